# One image, three binaries: /operator, /gateway and /fakeprovider (the last for kind e2e only).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/operator . && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/gateway ./dataplane/cmd/gateway && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/fakeprovider ./test/fakeprovider/cmd/fakeprovider

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/operator /out/gateway /out/fakeprovider /
USER 65532:65532
ENTRYPOINT ["/gateway"]
