package sandbox

import (
	"fmt"
	"path"
	"strings"
)

// CleanRel checks a workspace-relative path lexically, for providers, and
// returns it cleaned ("." for the root): NUL bytes, absolute paths and ".."
// components are refused with ErrOutsideWorkspace. Links are the
// provider's to resolve safely.
func CleanRel(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("contains a NUL byte: %w", ErrOutsideWorkspace)
	}
	if p == "" || p == "." {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("absolute path: %w", ErrOutsideWorkspace)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("contains \"..\": %w", ErrOutsideWorkspace)
		}
	}
	return path.Clean(p), nil
}
