package sandbox

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// LocalRepos decides which host directories may be a project's
// repository. Hydration copies a local repository as the server's user
// (often root), so a path is a way to read host files: only the
// terminal's own checkout (`hero run --repo PATH`, run by the person who
// owns it) and directories under the operator's HERO_LOCAL_REPO_ROOT are
// allowed, and never anything holding hero's data directory.
type LocalRepos struct {
	// Root is HERO_LOCAL_REPO_ROOT; "" allows no local path outside the
	// terminal.
	Root string
	// DataDir is HERO_DATA_DIR: neither inside it nor a parent of it.
	DataDir string
}

// IsLocal reports whether a project's repository URL names a directory on
// this host: an absolute path or a file:// URL.
func IsLocal(repo string) bool {
	return strings.HasPrefix(repo, "/") || strings.HasPrefix(strings.ToLower(repo), "file:")
}

// Resolve returns the directory repo names, with symlinks evaluated, or
// an error saying why hero refuses it. terminal is true for a run started
// by `hero run` on this machine.
func (l LocalRepos) Resolve(repo string, terminal bool) (string, error) {
	path := repo
	if strings.HasPrefix(strings.ToLower(repo), "file:") {
		u, err := url.Parse(repo)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return "", errors.New("a file:// repository URL must be file:///absolute/path on this machine")
		}
		path = u.Path
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("local repository %s is not an absolute path", repo)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("local repository %s: %w", path, errors.Unwrap(err))
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return "", fmt.Errorf("local repository %s is not a directory", path)
	}
	if l.DataDir != "" {
		data := resolveBest(l.DataDir)
		if within(real, data) || within(data, real) {
			return "", fmt.Errorf("local repository %s is or holds hero's data directory (HERO_DATA_DIR), which no project may use", path)
		}
	}
	if terminal {
		return real, nil
	}
	if l.Root == "" {
		return "", fmt.Errorf("local repository %s: only `hero run --repo PATH` in a terminal may use a directory on this machine; to allow it elsewhere the operator sets HERO_LOCAL_REPO_ROOT and the directory must be under it", path)
	}
	root := resolveBest(l.Root)
	if !within(real, root) {
		return "", fmt.Errorf("local repository %s (%s once links are followed) is not under HERO_LOCAL_REPO_ROOT (%s)", path, real, l.Root)
	}
	return real, nil
}

// resolveBest is p absolute with symlinks evaluated as far as it exists.
func resolveBest(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
