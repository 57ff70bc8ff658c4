package github

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// parseRepoURL reads host and owner/name from a repository URL as people
// write it: https://github.com/o/r, with or without .git or a trailing
// slash, http(s) on an Enterprise host, ssh://git@host/o/r.git or
// git@host:o/r.git.
func parseRepoURL(raw string) (host string, repo Repo, ok bool) {
	raw = strings.TrimSpace(raw)
	var path string
	if at, rest, found := strings.Cut(raw, "@"); found && !strings.Contains(at, "://") && strings.Contains(rest, ":") {
		// scp-like: git@host:o/r.git
		host, path, _ = strings.Cut(rest, ":")
	} else {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", Repo{}, false
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git":
		default:
			return "", Repo{}, false
		}
		host, path = u.Host, u.Path
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, name, found := strings.Cut(path, "/")
	if !found || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", Repo{}, false
	}
	return strings.ToLower(host), Repo{Owner: owner, Name: name}, true
}

func sameRepo(a, b Repo) bool {
	return strings.EqualFold(a.Owner, b.Owner) && strings.EqualFold(a.Name, b.Name)
}

// Thread is what a run's ThreadRef encodes: the issue (or pull request)
// it is about, the comment that started it, if any, and the branch it
// continues when it works on hero's own pull request.
type Thread struct {
	Repo      Repo
	Number    int
	CommentID int64 // 0 when an assignment or a label started the run
	// ReviewComment says CommentID is a pull request review comment (on
	// a line of the diff), not an issue comment.
	ReviewComment bool
	// Branch is the head branch of hero's own pull request that the run
	// continues: the workspace checks it out and pushes go to it. ""
	// for a run that starts from the default branch.
	Branch string
}

// String is the ThreadRef stored with the run: "owner/repo#12",
// "owner/repo#12@c4927004" (issue comment), "owner/repo#12@r88" (review
// comment), with " on hero/12-fix" when it continues a branch.
func (t Thread) String() string {
	s := fmt.Sprintf("%s/%s#%d", t.Repo.Owner, t.Repo.Name, t.Number)
	if t.CommentID != 0 {
		kind := "c"
		if t.ReviewComment {
			kind = "r"
		}
		s += fmt.Sprintf("@%s%d", kind, t.CommentID)
	}
	if t.Branch != "" {
		s += " on " + t.Branch
	}
	return s
}

// ParseThread reads a ThreadRef written by Thread.String.
func ParseThread(ref string) (Thread, error) {
	bad := fmt.Errorf("github thread reference %q is not owner/repo#number[@c<comment id>|@r<review comment id>][ on <branch>]", ref)
	ref, branch, hasBranch := strings.Cut(ref, " on ")
	if hasBranch && (branch == "" || strings.ContainsAny(branch, " \t\n") || strings.HasPrefix(branch, "-")) {
		return Thread{}, bad
	}
	repoPart, rest, ok := strings.Cut(ref, "#")
	if !ok {
		return Thread{}, bad
	}
	owner, name, ok := strings.Cut(repoPart, "/")
	if !ok || owner == "" || name == "" {
		return Thread{}, bad
	}
	numPart, commentPart, hasComment := strings.Cut(rest, "@")
	n, err := strconv.Atoi(numPart)
	if err != nil || n <= 0 {
		return Thread{}, bad
	}
	t := Thread{Repo: Repo{Owner: owner, Name: name}, Number: n, Branch: branch}
	if hasComment {
		switch {
		case strings.HasPrefix(commentPart, "c"):
		case strings.HasPrefix(commentPart, "r"):
			t.ReviewComment = true
		default:
			return Thread{}, bad
		}
		if t.CommentID, err = strconv.ParseInt(commentPart[1:], 10, 64); err != nil || t.CommentID <= 0 {
			return Thread{}, bad
		}
	}
	return t, nil
}
