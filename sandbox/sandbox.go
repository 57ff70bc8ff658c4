// Package sandbox defines where the agent's commands and file edits happen:
// an isolated workspace holding one project's repository.
//
// A Provider creates Sandboxes (local bubblewrap in sandbox/bwrap, E2B cloud
// VMs in sandbox/e2b). The Manager pools, health-checks, leases and reaps
// them; Hydrate fills a fresh workspace with a repository, secrets and
// dependencies.
//
// Lifecycle of a Sandbox:
//
//	Provider.Create(spec)  → a running, empty workspace at WorkspaceRoot
//	Exec / ReadFile / WriteFile / List / Stat / Remove, any number of times,
//	                          concurrently safe
//	Close                  → every process killed, workspace deleted; further
//	                          calls return ErrClosed
//
// Paths given to the file methods are relative to the workspace root ("/repo"
// inside the sandbox). A path that is absolute, climbs out with "..", contains
// a NUL byte, or resolves through a symlink to somewhere outside the workspace
// is refused with ErrOutsideWorkspace and nothing is touched.
package sandbox

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// WorkspaceRoot is where the project's repository lives inside every sandbox.
const WorkspaceRoot = "/repo"

// Errors returned by providers and sandboxes. Wrap them with %w so callers
// can use errors.Is.
var (
	// ErrOutsideWorkspace: a path would leave the workspace.
	ErrOutsideWorkspace = errors.New("path is outside the workspace")
	// ErrClosed: the sandbox was closed (or reaped) before the call.
	ErrClosed = errors.New("sandbox is closed")
	// ErrNotFound: the file or directory does not exist.
	ErrNotFound = fs.ErrNotExist
	// ErrNotRegularFile: ReadFile or WriteFile met a directory, named
	// pipe, socket or device; the message says which. It also matches
	// fs.ErrInvalid.
	ErrNotRegularFile error = notRegularFile{}
	// ErrUnavailable: the provider cannot create sandboxes on this machine
	// (e.g. bubblewrap is not installed); the message says how to fix it.
	ErrUnavailable = errors.New("sandbox provider unavailable")
)

type notRegularFile struct{}

func (notRegularFile) Error() string        { return "not a regular file" }
func (notRegularFile) Is(target error) bool { return target == fs.ErrInvalid }

// Limits caps what commands may consume. Zero means the provider default.
// The local provider enforces MemoryBytes and Processes for the sandbox as a
// whole when it has cgroups (per process via RLIMIT_AS/RLIMIT_NPROC
// otherwise); CPUSeconds and FileSizeBytes are per-process rlimits;
// DiskBytes is enforced by the kernel on a loop-mounted volume when hero is
// root, by measuring otherwise (see sandbox/bwrap/disk.go).
type Limits struct {
	MemoryBytes   int64 // memory of the sandbox's processes (address space per process without cgroups)
	CPUSeconds    int   // CPU time per process
	Processes     int   // processes and threads alive at once in the sandbox
	FileSizeBytes int64 // largest file a command may write
	// DiskBytes caps the disk space of the sandbox's files (workspace and
	// HOME together); the local provider also caps its memory-backed /tmp
	// at the smaller of DiskBytes and MemoryBytes.
	DiskBytes int64
}

// Spec says what sandbox to create.
type Spec struct {
	// Template names the image (E2B template id or alias); the local
	// provider records it and uses it as the pool key.
	Template string
	// Env is set for every command (project secrets are injected here).
	Env map[string]string
	// Network allows outbound network for every command. When false, only
	// a Cmd with Network set (and a provider that honours it) gets network.
	Network bool
	// InstallSecrets gives Env to the commands that get network for
	// themselves (Cmd.Network on a sandbox without Network: dependency
	// installs). Off, those run with Cmd.Env only, so a package's install
	// script cannot send the project's secrets anywhere.
	InstallSecrets bool
	Limits         Limits
	// Timeout is the sandbox's lifetime on providers that enforce one
	// (E2B); the Manager enforces idle timeouts itself.
	Timeout time.Duration
	// Labels are free-form metadata (project, execution id) persisted with
	// the lease so orphans can be traced after a restart.
	Labels map[string]string
}

// Cmd is one command to run inside a sandbox. Args is an argv, never a
// shell string: to run shell syntax, pass []string{"sh", "-c", script}.
type Cmd struct {
	Args []string
	// Dir is the working directory, relative to the workspace root ("" is
	// the root itself); it is confined like any other path.
	Dir string
	// Env is added on top of Spec.Env.
	Env map[string]string
	// Stdin, Stdout and Stderr may be nil. Output is streamed as it is
	// produced, so a caller can show live progress.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Timeout is the wall-clock limit; 0 means the provider default. On
	// expiry (or when ctx ends) the whole process tree is killed.
	Timeout time.Duration
	// Network grants network to this one command even when the sandbox
	// has none (used for dependency installs when the project allows it).
	Network bool
	// NoSecrets runs the command without Spec.Env, with Cmd.Env only (the
	// Manager sets it for networked commands unless Spec.InstallSecrets).
	NoSecrets bool
}

// Result is how a command ended.
type Result struct {
	ExitCode int
	Duration time.Duration
	// TimedOut is set when Cmd.Timeout killed the command; Killed when ctx
	// ended first or a limit killed it (with ExitCode from the signal).
	TimedOut bool
	Killed   bool
}

// FileInfo describes one entry, with Path relative to the workspace root.
type FileInfo struct {
	Path    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
	IsDir   bool
}

// HostWorkspace is implemented by sandboxes whose workspace is a directory
// on this host (the local provider). Hydrate uses it to copy a local
// repository directly instead of streaming a tar archive through Exec.
type HostWorkspace interface {
	// HostDir is the host directory mounted at WorkspaceRoot.
	HostDir() string
	// HostOwner is the uid and gid that files placed into HostDir must
	// have for commands in the sandbox to modify them.
	HostOwner() (uid, gid int)
}

// LayeredWorkspace is implemented by sandboxes that can make their empty
// workspace a copy-on-write view of a directory on this host (the local
// provider, with an overlay mount whose upper layer is on the sandbox's
// own capped volume). Hydrate uses it to start a workspace from a prepared
// checkout without writing the tree.
type LayeredWorkspace interface {
	// LayerWorkspace mounts base, read-only, under the workspace. It must
	// be called before anything else touched the workspace, and base must
	// not change while the sandbox lives. It returns an error wrapping
	// errors.ErrUnsupported when this sandbox cannot (the caller then
	// copies).
	LayerWorkspace(ctx context.Context, base string) error
}

// Uploader is implemented by sandboxes whose Exec stdin is slow for bulk
// data (E2B carries it in one request per chunk). Hydrate uploads a
// bundle or archive in one streamed request instead and redirects the
// command's input from it.
type Uploader interface {
	// Upload stores r in a new private file in the sandbox and returns
	// its path relative to $HOME, and a function that removes it.
	Upload(ctx context.Context, r io.Reader) (path string, remove func(context.Context), err error)
}

// Provider creates sandboxes of one kind.
type Provider interface {
	// Name is "local" or "e2b".
	Name() string
	// Create starts a new empty sandbox. It returns an error wrapping
	// ErrUnavailable when the provider cannot work on this machine.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
	// Health reports whether the provider can create sandboxes right now.
	Health(ctx context.Context) error
	// Destroy removes a sandbox by id, for orphans found in persisted
	// leases after a restart. Unknown ids are not an error.
	Destroy(ctx context.Context, id string) error
}

// ProviderCloser is implemented by providers that hold something of their
// own between sandboxes (the local provider's spare disk volume).
// Manager.Close calls it after closing its sandboxes; the provider may
// still create sandboxes afterwards.
type ProviderCloser interface {
	Close(ctx context.Context) error
}

// Reattacher is implemented by providers whose sandboxes outlive the
// process that made them (E2B): a run that continues after a restart, in
// a new process or on another replica, gets its own sandbox back
// (Manager.Reattach) instead of a fresh one.
type Reattacher interface {
	// Reattach reaches sandbox id, resuming it when it is paused, as a
	// sandbox made with spec. It returns an error wrapping ErrClosed when
	// the sandbox no longer exists.
	Reattach(ctx context.Context, id string, spec Spec) (Sandbox, error)
}

// Sandbox is one isolated workspace. All methods are safe for concurrent
// use. Every method returns an error wrapping ErrClosed after Close.
type Sandbox interface {
	// ID is unique per provider and stable across restarts (it is what a
	// lease records).
	ID() string
	// Exec runs a command to completion. A non-zero exit is not an error:
	// error is for commands that could not be started or a broken sandbox.
	// When ctx ends first the process tree is killed and Exec returns
	// Result{Killed: true} together with an error wrapping ctx.Err().
	Exec(ctx context.Context, cmd Cmd) (Result, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile creates parent directories as needed.
	WriteFile(ctx context.Context, path string, data []byte, perm fs.FileMode) error
	// List returns the entries under path ("" is the root), recursively
	// when asked, skipping .git contents.
	List(ctx context.Context, path string, recursive bool) ([]FileInfo, error)
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Remove deletes a file or an empty directory, or a whole tree when
	// recursive is set.
	Remove(ctx context.Context, path string, recursive bool) error
	// Alive is a cheap health probe (the Manager caches its result).
	Alive(ctx context.Context) error
	// Close kills every process and deletes the workspace. It is
	// idempotent.
	Close(ctx context.Context) error
}
