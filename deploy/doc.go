// Package deploy holds hero's container image (docker/Dockerfile), the
// compose file for one machine (compose.yaml, .env.example) and the Helm
// chart (helm/hero). It has no code: its tests check those files without
// Docker or a cluster (see deploy/README.md).
package deploy
