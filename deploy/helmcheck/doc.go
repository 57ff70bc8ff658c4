// Package helmcheck checks deploy/helm/hero with Helm's own chart loader,
// template engine and linter (helm.sh/helm/v3 as a library, pinned in this
// module's go.mod), and parses what it renders with Kubernetes' strict
// decoder. It is a module of its own so that Helm's and Kubernetes'
// dependencies stay out of hero's; `make test` runs it.
package helmcheck
