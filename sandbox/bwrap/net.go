package bwrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Network for commands that are allowed it. A networked command does not
// share the host's network namespace: it keeps the empty one bwrap made
// for it, and slirp4netns gives that namespace a user-mode network — a tap
// interface whose traffic slirp4netns re-creates as ordinary sockets of
// its own on the host, so the sandbox reaches what an unprivileged host
// process could, minus what is taken away below:
//
//   - host loopback: slirp4netns --disable-host-loopback (otherwise the
//     gateway 10.0.2.2 is the host's 127.0.0.1, where hero listens);
//   - private, shared, link-local (cloud metadata 169.254.169.254),
//     multicast and reserved IPv4 ranges, and every address of the host's
//     own interfaces: "unreachable" routes in the sandbox's namespace,
//     added by hero before the command starts. The command cannot delete
//     them: it has no capabilities (bwrap --cap-drop ALL) and cannot make
//     a user namespace to get some (--disable-userns);
//   - IPv6: slirp4netns runs without -6, so the namespace has none.
//
// slirp4netns has no destination filter of its own, and pasta forwards to
// any address too; routes inside the namespace are the one place both the
// sandbox cannot touch and every packet passes. DNS goes to slirp4netns's
// forwarder at 10.0.2.3, which asks the host's resolver.
const (
	slirpCIDR    = "10.0.2.0/24"
	slirpDNS     = "10.0.2.3"
	slirpTimeout = 10 * time.Second
)

// blockedRanges are the IPv4 destinations a networked sandbox never
// reaches (RFC 6890 special-purpose blocks that are not the internet).
var blockedRanges = []string{
	"0.0.0.0/8",      // "this network"
	"10.0.0.0/8",     // RFC 1918 (slirp's own 10.0.2.0/24 stays, more specific)
	"100.64.0.0/10",  // shared address space (CGNAT; some clouds' metadata)
	"127.0.0.0/8",    // loopback (the namespace's own lo answers locally first)
	"169.254.0.0/16", // link-local, cloud metadata
	"172.16.0.0/12",  // RFC 1918
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // RFC 1918
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, broadcast
}

// netTools are the host programs networking needs; "" when missing.
type netTools struct {
	slirp, nsenter, ip string
}

func findNetTools() (netTools, error) {
	t := netTools{slirp: systemTool("slirp4netns"), nsenter: systemTool("nsenter"), ip: systemTool("ip")}
	var missing []string
	if t.slirp == "" {
		missing = append(missing, "slirp4netns (apt-get install slirp4netns)")
	}
	if t.nsenter == "" {
		missing = append(missing, "nsenter (apt-get install util-linux)")
	}
	if t.ip == "" {
		missing = append(missing, "ip (apt-get install iproute2)")
	}
	if err := unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK); err != nil {
		missing = append(missing, fmt.Sprintf("/dev/net/tun usable by this user (%v)", err))
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return t, nil
}

// userNet is the network of one running command.
type userNet struct {
	slirp *exec.Cmd
	exit  *os.File // closing it tells slirp4netns to quit
}

// startNetwork gives the network namespace of pid (bwrap's sandbox init,
// still blocked) a user-mode network with the blocked routes in place.
func (p *Provider) startNetwork(ctx context.Context, pid int) (*userNet, error) {
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		exitR.Close()
		exitW.Close()
		return nil, err
	}
	defer readyR.Close()
	extra := []*os.File{exitR, readyW}
	// No --configure: that also sets up lo, racing bwrap, which does so
	// itself once released; blockRoutes configures the tap instead.
	args := []string{"--mtu=65520", "--disable-host-loopback", "--cidr=" + slirpCIDR,
		"--exit-fd=3", "--ready-fd=4"}
	if !p.rootlessCaller {
		// slirp4netns parses the sandbox's packets on the host: as root,
		// confine it (own mount namespace, capabilities dropped, seccomp).
		// Rootless it runs as hero's user inside the sandbox's user
		// namespace, where its own sandbox cannot be set up.
		args = append(args, "--enable-sandbox", "--enable-seccomp")
	}
	if p.rootlessCaller {
		userns, err := ownerUserns(pid)
		if err != nil {
			exitR.Close()
			exitW.Close()
			readyW.Close()
			return nil, err
		}
		defer userns.Close()
		extra = append(extra, userns)
		args = append(args, "--userns-path=/proc/self/fd/5")
	}
	// --netns-type=path: given a pid, slirp4netns also joins the pid's
	// user namespace first, where it then lacks the right to enter the
	// network namespace (EPERM even as root).
	args = append(args, "--netns-type=path", "/proc/"+strconv.Itoa(pid)+"/ns/net", "tap0")
	cmd := exec.Command(p.net.slirp, args...)
	cmd.Env = hostEnv()
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out tailBuffer
	out.max = 2048
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	exitR.Close()
	readyW.Close()
	if err != nil {
		exitW.Close()
		return nil, fmt.Errorf("start slirp4netns: %w", err)
	}
	n := &userNet{slirp: cmd, exit: exitW}
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(slirpTimeout):
		err = errors.New("timed out")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		n.stop()
		return nil, fmt.Errorf("slirp4netns did not come up: %v: %s", err, strings.TrimSpace(string(out.Bytes())))
	}
	if err := p.blockRoutes(ctx, pid); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// blockRoutes configures the tap interface and adds the unreachable routes
// inside pid's network namespace.
func (p *Provider) blockRoutes(ctx context.Context, pid int) error {
	var script strings.Builder
	// slirp4netns's fixed addresses in its CIDR: .100 is ours, .2 the
	// gateway, .3 DNS.
	script.WriteString("link set tap0 mtu 65520 up\naddr add 10.0.2.100/24 dev tap0\nroute add default via 10.0.2.2 dev tap0\n")
	for _, r := range append(blockedRanges, hostAddresses()...) {
		fmt.Fprintf(&script, "route add unreachable %s\n", r)
	}
	args := []string{"--net=/proc/" + strconv.Itoa(pid) + "/ns/net"}
	var extra []*os.File
	if p.rootlessCaller {
		// As the namespace's owner, in its user namespace: the only way an
		// unprivileged hero holds CAP_NET_ADMIN there.
		userns, err := ownerUserns(pid)
		if err != nil {
			return err
		}
		defer userns.Close()
		extra = append(extra, userns)
		args = append(args, "--user=/proc/self/fd/3", "--preserve-credentials")
	}
	args = append(args, "--", p.net.ip, "-batch", "-")
	ctx, cancel := context.WithTimeout(ctx, slirpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.net.nsenter, args...)
	cmd.Env = hostEnv()
	cmd.Stdin = strings.NewReader(script.String())
	cmd.ExtraFiles = extra
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("block private networks in the sandbox: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsGetUserns is NS_GET_USERNS (linux/nsfs.h), not in x/sys/unix.
const nsGetUserns = 0xb701

// ownerUserns opens the user namespace that owns pid's network namespace.
// It is not necessarily pid's own: bwrap may nest a second user namespace
// (for --disable-userns), and only the owner's grants CAP_NET_ADMIN over
// the network namespace to an unprivileged hero.
func ownerUserns(pid int) (*os.File, error) {
	netns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	defer netns.Close()
	fd, err := unix.IoctlRetInt(int(netns.Fd()), nsGetUserns)
	if err != nil {
		return nil, fmt.Errorf("owner of the network namespace: %w", err)
	}
	return os.NewFile(uintptr(fd), "userns"), nil
}

// hostAddresses are this host's own IPv4 addresses as /32 routes (also
// private ones: one may lie inside slirp's own 10.0.2.0/24).
func hostAddresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip4 := ipn.IP.To4()
		if ip4 == nil || ip4.IsLoopback() {
			continue
		}
		out = append(out, ip4.String()+"/32")
	}
	return out
}

// stop ends slirp4netns and reaps it.
func (n *userNet) stop() {
	n.exit.Close()
	done := make(chan struct{})
	go func() { _ = n.slirp.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = n.slirp.Process.Kill()
		<-done
	}
}
