# Two stages: build a static binary with the Go toolchain, then ship only the
# binary on a distroless base (no shell, no package manager, non-root user).
#
#   docker build -t coco .
#   docker run --rm -p 8000:8000 --env-file .env coco            # serve
#   docker run --rm --env-file .env coco coco migrate            # any subcommand

# go.mod asks for Go 1.26 or later; the image pins the patch release this
# project is tested with.
FROM golang:1.26.8 AS build
WORKDIR /src
# Modules first, so editing the code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
# The whole checkout, .git included: go build stamps the commit into the
# binary (coco version, the listening log line, coco_build_info). Only the
# binary reaches the final image.
COPY . .
# CGO off: the binary must run without libc on the static base image.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=true -ldflags="-s -w" -o /out/coco ./cmd/coco

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/coco /usr/local/bin/coco
USER nonroot:nonroot
EXPOSE 8000
# No shell or curl in the image: coco asks its own /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s CMD ["coco", "healthcheck"]
# No ENTRYPOINT: a command given to the image (Fly's release_command, `fly ssh
# console -C`, `docker run IMAGE coco migrate`) is the whole command line.
CMD ["coco", "serve"]
