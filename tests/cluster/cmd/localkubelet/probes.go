package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

type probeResult struct {
	container string
	gen       int
	kind      string // Startup, Readiness, Liveness
	ok        bool
	msg       string
}

func (w *podWorker) startProbes(ctx context.Context, c *ctr) {
	for kind, p := range map[string]*v1.Probe{"Startup": c.spec.StartupProbe, "Readiness": c.spec.ReadinessProbe, "Liveness": c.spec.LivenessProbe} {
		if p == nil {
			continue
		}
		go w.probeLoop(ctx, c.spec, c.launch, c.gen, kind, p)
	}
	if c.spec.ReadinessProbe == nil && c.spec.StartupProbe == nil {
		c.ready = true
	}
}

func (w *podWorker) probeLoop(ctx context.Context, spec v1.Container, l *launch, gen int, kind string, p *v1.Probe) {
	period := time.Duration(p.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	for {
		ok, msg := w.runProbe(ctx, spec, l, &p.ProbeHandler, time.Duration(max(p.TimeoutSeconds, 1))*time.Second)
		if ctx.Err() != nil {
			return
		}
		select {
		case w.probeCh <- probeResult{container: spec.Name, gen: gen, kind: kind, ok: ok, msg: msg}:
		case <-ctx.Done():
			return
		}
		if kind == "Startup" && ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

func resolvePort(spec v1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}

// runProbe runs one probe against the pod's own address (the probe's host field is ignored: nothing is sent
// to another address). exec probes run the command on the host as the run user, with the container's
// environment and mapped paths.
func (w *podWorker) runProbe(ctx context.Context, spec v1.Container, l *launch, h *v1.ProbeHandler, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.TCPSocket != nil:
		port, err := resolvePort(spec, h.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(w.ip, strconv.Itoa(port)))
		if err != nil {
			return false, fmt.Sprintf("dial tcp %s:%d: %v", w.ip, port, err)
		}
		conn.Close()
		return true, ""
	case h.HTTPGet != nil:
		port, err := resolvePort(spec, h.HTTPGet.Port)
		if err != nil {
			return false, err.Error()
		}
		scheme := strings.ToLower(string(h.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		pth := h.HTTPGet.Path
		if !strings.HasPrefix(pth, "/") {
			pth = "/" + pth
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(w.ip, strconv.Itoa(port)), pth)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.35")
		for _, hd := range h.HTTPGet.HTTPHeaders {
			req.Header.Set(hd.Name, hd.Value)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	case h.Exec != nil:
		if l == nil || len(h.Exec.Command) == 0 {
			return false, "no command"
		}
		out, err := w.hostExec(ctx, l, h.Exec.Command)
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return true, ""
	case h.GRPC != nil:
		return false, "grpc probes are not supported by localkubelet"
	}
	return false, "probe has no handler"
}

// hostExec runs a command "in the container": on the host, as the run user, with the container's environment,
// working directory and mapped paths.
func (w *podWorker) hostExec(ctx context.Context, l *launch, command []string) ([]byte, error) {
	argv := make([]string, len(command))
	for i, a := range command {
		argv[i] = l.mapper.mapString(a)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = l.env, l.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(w.k.uid), Gid: uint32(w.k.gid), Groups: []uint32{}}}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd.CombinedOutput()
}

var killPid1 = regexp.MustCompile(`(?:^|[;&|(\s])kill\s+(?:-s\s+([A-Za-z0-9]+)\s+|-([A-Za-z0-9]+)\s+)?1(?:$|[\s;&|)])`)
var waitsForPid1 = regexp.MustCompile(`kill\s+-0\s+1\b`)

func signalByName(s string) (syscall.Signal, bool) {
	s = strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), n > 0 && n < 65
	}
	m := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT,
		"HUP": syscall.SIGHUP, "KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
		"STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT, "WINCH": syscall.SIGWINCH}
	sig, ok := m[s]
	return sig, ok
}

// runPreStop runs the preStop hook within the grace period. There is no PID namespace, so an exec hook that
// signals PID 1 ("kill -INT 1", "kill -s QUIT 1", "kill 1") is emulated: that signal goes to the container's main
// process, and when the hook then waits for PID 1 to go away ("while kill -0 1 ...") we wait for that process
// to exit. Any other exec hook runs on the host like an exec probe. httpGet hooks go to the pod address, sleep
// hooks sleep.
func (w *podWorker) runPreStop(ctx context.Context, c *ctr, p *proc, h *v1.LifecycleHandler, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	switch {
	case h.Exec != nil:
		line := strings.Join(h.Exec.Command, " ")
		if m := killPid1.FindStringSubmatch(line); m != nil {
			name := m[1] + m[2]
			sig := syscall.SIGTERM
			if name != "" {
				var ok bool
				if sig, ok = signalByName(name); !ok || sig == 0 {
					return fmt.Errorf("preStop: unknown signal %q", name)
				}
			}
			p.kill(sig)
			if waitsForPid1.MatchString(line) {
				select {
				case <-p.done:
				case <-ctx.Done():
				case <-w.goneCh:
				}
			}
			return nil
		}
		if c.launch == nil {
			return nil
		}
		out, err := w.hostExec(ctx, c.launch, h.Exec.Command)
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
	case h.HTTPGet != nil:
		if ok, msg := w.runProbe(ctx, c.spec, c.launch, &v1.ProbeHandler{HTTPGet: h.HTTPGet}, time.Until(deadline)); !ok {
			return fmt.Errorf("%s", msg)
		}
	case h.Sleep != nil:
		select {
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		case <-ctx.Done():
		case <-p.done:
		}
	}
	return nil
}

var _ = ptr.To[int]
