package layout

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// The docs stand on their own: code and docs cite only files and sections of this repository.
// These tests read every file git tracks (and new files it does not ignore) and check that
//
//   - nothing cites a document that is not in the repository (the first design document, the
//     reference notes it was written from) or a section by number;
//   - every cited docs/ file exists, and a section cited after it in double quotes
//     (`docs/providers.md "AWS event-stream framing"`) is a heading of that file;
//   - every relative Markdown link resolves to a file, and its #anchor to a heading;
//   - a file named by "See X in the repository root" (the source headers' LICENSE) exists.

const root = "../.."

// selfPath is this file, which necessarily spells out the patterns it forbids.
const selfPath = "test/layout/citations_test.go"

// forbidden are citations of documents that are not in the repository.
var forbidden = []struct {
	re  *regexp.Regexp
	fix string
}{
	{regexp.MustCompile(`DESIGN\.md`), `the design document is not in the repository: cite docs/architecture.md`},
	{regexp.MustCompile(`posthog-ai-events`), `the event reference is not in the repository: cite docs/events.md`},
	{regexp.MustCompile(`peer-gateways\.md|envtest-offline\.md`), `reference notes are not in the repository: write what the project relies on into docs/`},
	{regexp.MustCompile(`shared/reference|\.\./shared\b|/work/shared`), `files outside the repository cannot be cited`},
	{regexp.MustCompile(`\.md\)?,?\s+(?:sections?\s+|§\s*)?\d+(?:\.\d+)*\b|§`), `cite a section by its heading in double quotes, not by number`},
}

var (
	// docCitation is a repository path under docs/ (not part of a longer path).
	docCitation = regexp.MustCompile(`(?:^|[^\w./-])(docs/[\w./-]+\.(?:md|ya?ml|json))`)
	// linkTail is the target of a Markdown link whose text was the citation: [docs/x.md](x.md).
	linkTail = regexp.MustCompile(`^\]\([^)\s]*\)`)
	// sectionName is a quoted section name after a citation, possibly one of a list
	// (`"A", "B"`, `"A" and "B"`), possibly with Go-escaped quotes.
	sectionName = regexp.MustCompile(`^(?:\)?[,:]?\s+|,\s*|\s+and\s+)\\?"([^"\\\n]+)\\?"`)
	// openSection is a quoted section name that does not end on the citation's line.
	openSection = regexp.MustCompile(`^\)?[,:]?\s+\\?"[^"]*$`)
	mdLink      = regexp.MustCompile(`\[[^\]\n]*\]\(([^)\s]+)\)`)
	seeInRoot   = regexp.MustCompile(`[Ss]ee (\S+) in the repository root`)
)

// repoFiles returns the repository's text files (path relative to root -> content).
func repoFiles(t *testing.T) map[string][]byte {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), "git ls-files: %s", stderr.String())
	files := map[string][]byte{}
	dirs := map[string]bool{}
	for _, name := range strings.Split(strings.TrimRight(out.String(), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		for d := path.Dir(name); !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			continue // deleted in the work tree, a directory (submodule), or binary
		}
		files[name] = b
	}
	// Listing the directories lets go test's cache see a file added since the last run (it
	// records the entries of every directory a test reads); git's own reads are invisible to it.
	for d := range dirs {
		_, _ = os.ReadDir(filepath.Join(root, d))
	}
	require.NotEmpty(t, files)
	require.Contains(t, files, "README.md", "run from test/layout inside the repository")
	return files
}

// headings returns the anchors and names of a Markdown file's headings (outside code fences).
// Names have their backticks removed; anchors follow GitHub's rules.
func headings(md []byte) (names, anchors map[string]bool) {
	names, anchors = map[string]bool{}, map[string]bool{}
	seen := map[string]int{}
	fence := false
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		if text == "" || strings.TrimLeft(line, "#")[0] != ' ' {
			continue
		}
		names[strings.ReplaceAll(text, "`", "")] = true
		a := slug(text)
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return names, anchors
}

// slug is GitHub's heading anchor: lowercase, letters, digits, '-' and '_' kept, spaces to
// '-', everything else dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

type lineRef struct {
	file string
	line int
}

func (l lineRef) String() string { return fmt.Sprintf("%s:%d", l.file, l.line) }

// eachLine calls fn for every line of every file; in Markdown files lines inside code
// fences are passed with inFence set.
func eachLine(files map[string][]byte, fn func(at lineRef, line string, inFence bool)) {
	for name, b := range files {
		md := strings.HasSuffix(name, ".md")
		fence := false
		for i, line := range strings.Split(string(b), "\n") {
			if md && strings.HasPrefix(strings.TrimSpace(line), "```") {
				fence = !fence
				fn(lineRef{name, i + 1}, line, true)
				continue
			}
			fn(lineRef{name, i + 1}, line, fence)
		}
	}
}

func TestNoCitationOfDocumentsOutsideTheRepository(t *testing.T) {
	var problems []string
	eachLine(repoFiles(t), func(at lineRef, line string, _ bool) {
		if at.file == selfPath {
			return
		}
		for _, f := range forbidden {
			if m := f.re.FindString(line); m != "" {
				problems = append(problems, fmt.Sprintf("%s: %q: %s", at, m, f.fix))
			}
		}
	})
	require.Empty(t, problems, "citations of documents outside the repository:\n%s", strings.Join(problems, "\n"))
}

func TestCitedDocsAndSectionsExist(t *testing.T) {
	files := repoFiles(t)
	heads := map[string]map[string]bool{}
	sectionsOf := func(doc string) map[string]bool {
		if h, ok := heads[doc]; ok {
			return h
		}
		names, _ := headings(files[doc])
		heads[doc] = names
		return names
	}
	var problems []string
	checked := 0
	eachLine(files, func(at lineRef, line string, _ bool) {
		if at.file == selfPath {
			return
		}
		for _, m := range docCitation.FindAllStringSubmatchIndex(line, -1) {
			doc := strings.TrimRight(line[m[2]:m[3]], ".")
			if _, ok := files[doc]; !ok {
				problems = append(problems, fmt.Sprintf("%s: cites %s, which is not in the repository", at, doc))
				continue
			}
			rest := line[m[3]:]
			rest = rest[len(linkTail.FindString(rest)):]
			if openSection.MatchString(rest) {
				problems = append(problems, fmt.Sprintf("%s: keep the section name cited after %s on one line, so it can be checked", at, doc))
				continue
			}
			for {
				s := sectionName.FindStringSubmatch(rest)
				if s == nil || !strings.HasSuffix(doc, ".md") {
					break
				}
				name := strings.ReplaceAll(s[1], "`", "")
				if !sectionsOf(doc)[name] {
					problems = append(problems, fmt.Sprintf("%s: cites section %q of %s, which has no such heading", at, s[1], doc))
				}
				checked++
				rest = rest[len(s[0]):]
			}
		}
	})
	require.Empty(t, problems, "citations that point nowhere:\n%s", strings.Join(problems, "\n"))
	require.NotZero(t, checked, "no quoted section citation found: the parser is broken")
}

func TestMarkdownLinksResolve(t *testing.T) {
	files := repoFiles(t)
	var problems []string
	checked := 0
	eachLine(files, func(at lineRef, line string, inFence bool) {
		if !strings.HasSuffix(at.file, ".md") || inFence {
			return
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := at.file
			if file != "" {
				resolved = path.Clean(path.Join(path.Dir(at.file), file))
				if _, err := os.Stat(filepath.Join(root, resolved)); err != nil {
					problems = append(problems, fmt.Sprintf("%s: link to %s: no such file or directory", at, target))
					continue
				}
			}
			checked++
			if anchor == "" {
				continue
			}
			b, ok := files[resolved]
			if !ok || !strings.HasSuffix(resolved, ".md") {
				problems = append(problems, fmt.Sprintf("%s: link to %s: an anchor needs a Markdown file", at, target))
				continue
			}
			if _, anchors := headings(b); !anchors[anchor] {
				problems = append(problems, fmt.Sprintf("%s: link to %s: %s has no heading with that anchor", at, target, resolved))
			}
		}
	})
	require.Empty(t, problems, "broken Markdown links:\n%s", strings.Join(problems, "\n"))
	require.NotZero(t, checked, "no Markdown link found: the parser is broken")
}

func TestFilesNamedInTheRepositoryRootExist(t *testing.T) {
	files := repoFiles(t)
	named := map[string]lineRef{}
	eachLine(files, func(at lineRef, line string, _ bool) {
		if at.file == selfPath {
			return
		}
		for _, m := range seeInRoot.FindAllStringSubmatch(line, -1) {
			named[strings.TrimRight(m[1], ".,;:")] = at
		}
	})
	require.NotEmpty(t, named, "the source headers name LICENSE in the repository root")
	for name, at := range named {
		_, err := os.Stat(filepath.Join(root, name))
		require.NoError(t, err, "%s says to see %s in the repository root", at, name)
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Bedrock feature parity (`Supports`) and failover eligibility":         "bedrock-feature-parity-supports-and-failover-eligibility",
		"Two meanings of `$ai_input_cost_usd`":                                 "two-meanings-of-ai_input_cost_usd",
		"When ingestion prices an event, and when it keeps the sender's costs": "when-ingestion-prices-an-event-and-when-it-keeps-the-senders-costs",
		"AWS Bedrock: the stream translated, and its usage":                    "aws-bedrock-the-stream-translated-and-its-usage",
	} {
		require.Equal(t, want, slug(heading), heading)
	}
}
