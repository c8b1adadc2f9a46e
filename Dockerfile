# syntax=docker/dockerfile:1
#
# listsync and the Marketo emulator in one small image: static binaries
# (CGO_ENABLED=0; SQLite is pure Go) on distroless, running as a non-root
# user. `docker run --rm listsync:local` runs the demo;
# docker-compose.yml runs the worker.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ENV CGO_ENABLED=0 GOOS=linux
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/listsync ./cmd/listsync && \
    go build -trimpath -ldflags="-s -w" -o /out/marketo-emulator ./cmd/marketo-emulator

# distroless/static: CA certificates and /etc/passwd with the nonroot user
# (65532), nothing else. Time zones are embedded in the binary (time/tzdata).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/listsync /out/marketo-emulator /usr/local/bin/
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/listsync"]
CMD ["demo"]
