// Package deploy holds hero's container image (docker/Dockerfile), the
// compose file for one machine (compose.yaml, .env.example) and the Helm
// chart (helm/hero). It has no code: its tests check the Dockerfile and the
// compose file without Docker. The chart is checked with Helm's own engine
// in ./helmcheck, a module of its own (see deploy/README.md).
package deploy
