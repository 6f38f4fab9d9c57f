-- Argo CD health of llm-gateway's custom resources (group llmgateway.posthog.com). LLMRoute,
-- ProviderBackend, TeamBudget and TeamRollout share this script; argocd-cm.yaml next to it
-- registers it for each kind. What each verdict means is in docs/argocd.md:
--
--   Progressing  the operator has not reported on this generation yet (no status, or
--                status.observedGeneration behind metadata.generation), or the object is in
--                the newest snapshot and not every gateway replica serves it yet
--                (Programmed=False, Pending: "1/3 replicas at version X").
--   Degraded     Accepted=False (invalid, conflicted, wrong shape), ResolvedRefs=False (a
--                missing backend, Secret, key or team), Programmed=False for another reason;
--                a TeamBudget also when RunawayTripped=True, Exhausted=True or
--                CounterStoreAvailable=False: calls of that team are being refused or its
--                counters cannot be read, and nobody chose that.
--   Suspended    a TeamBudget whose kill switch (spec.suspended) is on and served by every
--                replica: the state a person chose.
--   Healthy      Accepted, ResolvedRefs and Programmed are True ("3/3 replicas at version X").
--
-- Argo CD runs custom checks from argocd-cm without Lua's string and math libraries (only base,
-- table, package and part of os): none of their functions are used here.

local hs = {}

local function find(conditions, conditionType)
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- "Accepted=False Conflicted: model ... is already claimed by LLMRoute ns/name"
local function describe(c)
  local text = tostring(c.type) .. "=" .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " " .. tostring(c.reason)
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. tostring(c.message)
  end
  return text
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
if status == nil or status.conditions == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the llm-gateway operator to report on this object"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the llm-gateway operator to compile generation " .. generation ..
    " (the status describes generation " .. status.observedGeneration .. ")"
  return hs
end

local conditions = status.conditions
local accepted = find(conditions, "Accepted")
local refs = find(conditions, "ResolvedRefs")
local programmed = find(conditions, "Programmed")
if accepted == nil or refs == nil or programmed == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the llm-gateway operator to set Accepted, ResolvedRefs and Programmed"
  return hs
end
for _, c in ipairs({accepted, refs, programmed}) do
  if generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "waiting for the llm-gateway operator to update " .. tostring(c.type) ..
      " for generation " .. generation
    return hs
  end
end

if accepted.status ~= "True" then
  hs.status = "Degraded"
  hs.message = describe(accepted)
  return hs
end
if refs.status ~= "True" then
  hs.status = "Degraded"
  hs.message = describe(refs)
  return hs
end
if programmed.status ~= "True" then
  if programmed.reason == "Pending" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(programmed)
  return hs
end

hs.status = "Healthy"
hs.message = tostring(programmed.message)

if obj.kind == "TeamBudget" then
  local suspended = find(conditions, "Suspended")
  if suspended ~= nil and suspended.status == "True" then
    hs.status = "Suspended"
    hs.message = describe(suspended)
    return hs
  end
  local problems = {}
  for _, conditionType in ipairs({"RunawayTripped", "Exhausted"}) do
    local c = find(conditions, conditionType)
    if c ~= nil and c.status == "True" then
      table.insert(problems, describe(c))
    end
  end
  local store = find(conditions, "CounterStoreAvailable")
  if store ~= nil and store.status == "False" then
    table.insert(problems, describe(store))
  end
  if #problems > 0 then
    hs.status = "Degraded"
    hs.message = table.concat(problems, "; ")
    return hs
  end
  local soft = find(conditions, "SoftLimitReached")
  if soft ~= nil and soft.status == "True" then
    hs.message = hs.message .. "; " .. describe(soft)
  end
end
return hs
