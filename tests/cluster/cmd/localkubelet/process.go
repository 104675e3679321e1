package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// mount maps a container path onto a host path (a materialised volume, or a file/dir inside it for subPath).
type mount struct {
	ctrPath  string
	hostPath string
}

// pathMapper rewrites absolute container paths that fall under a volume mountPath to the host path where
// localkubelet materialised the volume. Paths outside every mount are left alone.
type pathMapper []mount

func (w *podWorker) mounts(c *v1.Container) pathMapper {
	var m pathMapper
	for _, vm := range c.VolumeMounts {
		host := w.vols.hostDir(vm.Name)
		if host == "" {
			continue
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, vm.SubPath)
		}
		m = append(m, mount{ctrPath: path.Clean(vm.MountPath), hostPath: host})
	}
	sort.Slice(m, func(i, j int) bool { return len(m[i].ctrPath) > len(m[j].ctrPath) })
	return m
}

// mapPath maps one absolute path; ok reports whether it was under a mount.
func (m pathMapper) mapPath(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return p, false
	}
	c := path.Clean(p)
	for _, mt := range m {
		if c == mt.ctrPath {
			return mt.hostPath, true
		}
		if mt.ctrPath == "/" {
			return filepath.Join(mt.hostPath, c), true
		}
		if strings.HasPrefix(c, mt.ctrPath+"/") {
			return filepath.Join(mt.hostPath, strings.TrimPrefix(c, mt.ctrPath)), true
		}
	}
	return p, false
}

func isPathChar(b byte) bool {
	return b == '_' || b == '-' || b == '.' || b == '/' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// mapString rewrites every occurrence of a mount path inside a string (an argument like --config=/etc/x/y.ini
// or a shell command line): an occurrence counts when it starts a path (preceded by a non-path character) and
// ends at a path boundary.
func (m pathMapper) mapString(s string) string {
	if len(m) == 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		if s[i] == '/' && (i == 0 || !isPathChar(s[i-1])) {
			for _, mt := range m {
				if mt.ctrPath == "/" || !strings.HasPrefix(s[i:], mt.ctrPath) {
					continue
				}
				end := i + len(mt.ctrPath)
				if end < len(s) && s[end] != '/' && isPathChar(s[end]) {
					continue
				}
				b.WriteString(mt.hostPath)
				i = end
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// The image table: which local program runs a container.
const (
	kindPgbouncer  = "pgbouncer"
	kindPoolkeeper = "poolkeeper"
)

func imageKind(image string) string {
	img := strings.ToLower(image)
	repo := img
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		repo = repo[i+1:]
	}
	if i := strings.Index(repo, ":"); i >= 0 {
		repo = repo[:i]
	}
	// Only the image's own name counts (not its registry or path), so ghcr.io/poolkeeper/busybox is
	// not mistaken for the operator.
	if strings.Contains(repo, "pgbouncer") {
		return kindPgbouncer
	}
	if repo == "poolkeeper" {
		return kindPoolkeeper
	}
	return ""
}

// launch is everything needed to start one container process.
type launch struct {
	kind   string
	path   string
	argv   []string
	env    []string
	dir    string
	mapper pathMapper
	// pgbouncer only: the mounted ini (host path) and the rewritten copy the process reads.
	iniSrc, iniOut, runDir string
}

// errNotRunnable marks a container localkubelet cannot run (waiting reason ImageNotRunnable).
type errNotRunnable struct{ msg string }

func (e errNotRunnable) Error() string { return e.msg }

// configError marks a container whose configuration cannot be built (waiting reason CreateContainerConfigError).
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

func (w *podWorker) buildLaunch(ctx context.Context, pod *v1.Pod, c *v1.Container) (*launch, error) {
	kind := imageKind(c.Image)
	if kind == "" {
		return nil, errNotRunnable{fmt.Sprintf("localkubelet runs only pgbouncer and poolkeeper images, not %q", c.Image)}
	}
	ctrDir := filepath.Join(w.podDir, "containers", c.Name)
	workDir := filepath.Join(ctrDir, "root")
	runDir := filepath.Join(ctrDir, "run")
	tmpDir := filepath.Join(ctrDir, "tmp")
	for _, d := range []string{ctrDir, workDir, runDir, tmpDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		os.Chown(d, w.k.uid, w.k.gid)
	}
	if len(runDir) > 80 { // unix socket paths are limited to 107 bytes
		runDir = filepath.Join("/tmp", "localkubelet-"+w.ip+"-"+c.Name)
		os.MkdirAll(runDir, 0o755)
		os.Chown(runDir, w.k.uid, w.k.gid)
		w.extraDirs = append(w.extraDirs, runDir)
	}
	l := &launch{kind: kind, mapper: w.mounts(c), runDir: runDir, dir: workDir}
	env, err := w.buildEnv(ctx, pod, c, l.mapper, tmpDir)
	if err != nil {
		return nil, configError{err.Error()}
	}
	l.env = env
	envMap := map[string]string{}
	for _, kv := range env {
		if i := strings.IndexByte(kv, '='); i > 0 {
			envMap[kv[:i]] = kv[i+1:]
		}
	}
	cmd := expandAll(c.Command, envMap)
	args := expandAll(c.Args, envMap)
	if c.WorkingDir != "" {
		if p, ok := l.mapper.mapPath(c.WorkingDir); ok {
			l.dir = p
		}
	}

	switch kind {
	case kindPgbouncer:
		if len(cmd) > 0 && path.Base(cmd[0]) != "pgbouncer" {
			// Another entrypoint (e.g. a shell wrapper): run it on the host with mapped paths.
			return w.hostCommand(l, append(cmd, args...))
		}
		var rest []string
		if len(cmd) > 0 {
			rest = append(rest, cmd[1:]...)
		}
		rest = append(rest, args...)
		if len(rest) == 0 {
			rest = []string{"/etc/pgbouncer/pgbouncer.ini"} // the usual image default
		}
		var flags []string
		ini := ""
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			switch {
			case a == "-d" || a == "--daemon" || a == "-R" || a == "--reboot":
				// localkubelet supervises the process: no daemonising, no socket takeover.
			case a == "-u" || a == "--user":
				i++ // the process already runs unprivileged
			case strings.HasPrefix(a, "--user="):
			case strings.HasPrefix(a, "-") && a != "-":
				flags = append(flags, a)
			case ini == "":
				ini = a
			default:
				flags = append(flags, a)
			}
		}
		if ini == "" {
			return nil, configError{"no pgbouncer.ini argument"}
		}
		src, ok := l.mapper.mapPath(ini)
		if !ok {
			return nil, configError{fmt.Sprintf("config file %s is not inside a mounted volume", ini)}
		}
		l.iniSrc = src
		l.iniOut = filepath.Join(ctrDir, "pgbouncer.ini")
		if err := w.renderIni(l); err != nil {
			return nil, configError{err.Error()}
		}
		l.path = w.k.cfg.pgbouncerBin
		l.argv = append([]string{"pgbouncer"}, flags...)
		for i := range l.argv[1:] {
			l.argv[i+1] = l.mapper.mapString(l.argv[i+1])
		}
		l.argv = append(l.argv, l.iniOut)
	case kindPoolkeeper:
		bin := w.k.cfg.poolkeeperBin
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return nil, errNotRunnable{fmt.Sprintf("poolkeeper binary %s is not built", bin)}
		}
		var rest []string
		if len(cmd) > 0 {
			rest = append(rest, cmd[1:]...)
		}
		rest = append(rest, args...)
		l.path = bin
		l.argv = []string{bin}
		for _, a := range rest {
			l.argv = append(l.argv, l.mapper.mapString(a))
		}
	}
	return l, nil
}

func (w *podWorker) hostCommand(l *launch, argv []string) (*launch, error) {
	for i := range argv {
		argv[i] = l.mapper.mapString(argv[i])
	}
	p, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, configError{fmt.Sprintf("command %q: %v", argv[0], err)}
	}
	l.path, l.argv = p, argv
	return l, nil
}

// renderIni writes the pgbouncer.ini the process reads: the mounted file with listen_addr set to the pod IP
// (there is no network namespace), unix_socket_dir and pidfile moved into the container's run directory, and
// every value or %include that is an absolute path under a mountPath (auth_file, auth_hba_file, TLS files...)
// mapped to the materialised volume. Returns whether the content changed.
func (w *podWorker) renderIni(l *launch) error {
	src, err := os.ReadFile(l.iniSrc)
	if err != nil {
		return fmt.Errorf("reading %s: %w", l.iniSrc, err)
	}
	out := rewriteIni(string(src), w.ip, l.runDir, l.mapper)
	out = fmt.Sprintf(";; rewritten by localkubelet from %s (pod %s/%s, IP %s)\n", l.iniSrc, w.ns, w.name, w.ip) + out
	if old, err := os.ReadFile(l.iniOut); err == nil && string(old) == out {
		return nil
	}
	tmp := l.iniOut + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o600); err != nil {
		return err
	}
	os.Chown(tmp, w.k.uid, w.k.gid)
	return os.Rename(tmp, l.iniOut)
}

func rewriteIni(src, podIP, runDir string, m pathMapper) string {
	lines := strings.Split(src, "\n")
	var out []string
	section := ""
	sawSocketDir := false
	pgbHeader := -1
	for _, line := range lines {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
			section = strings.ToLower(strings.TrimSpace(t[1 : len(t)-1]))
			out = append(out, line)
			if section == "pgbouncer" {
				pgbHeader = len(out) - 1
			}
			continue
		case strings.HasPrefix(t, "%include"):
			out = append(out, m.mapString(line))
			continue
		case t == "" || strings.HasPrefix(t, ";") || strings.HasPrefix(t, "#"):
			out = append(out, line)
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			out = append(out, line)
			continue
		}
		key := strings.ToLower(strings.TrimSpace(line[:eq]))
		val := strings.TrimSpace(line[eq+1:])
		if section == "pgbouncer" {
			switch key {
			case "listen_addr":
				if val != "" {
					out = append(out, "listen_addr = "+podIP)
					continue
				}
			case "unix_socket_dir":
				sawSocketDir = true
				if val != "" {
					out = append(out, "unix_socket_dir = "+runDir)
					continue
				}
			case "pidfile":
				if val != "" {
					out = append(out, "pidfile = "+filepath.Join(runDir, "pgbouncer.pid"))
					continue
				}
			}
		}
		out = append(out, line[:eq+1]+m.mapString(line[eq+1:]))
	}
	if pgbHeader >= 0 && !sawSocketDir {
		// pgbouncer's default is /tmp, shared by every pod on this host: use the container's own directory.
		out = append(out[:pgbHeader+1], append([]string{"unix_socket_dir = " + runDir}, out[pgbHeader+1:]...)...)
	}
	return strings.Join(out, "\n")
}

// expand resolves $(VAR) references the way the kubelet does ($$ escapes, unknown names stay as written).
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func expandAll(in []string, env map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, env)
	}
	return out
}

// buildEnv assembles the process environment: a base (PATH, HOME, HOSTNAME, TMPDIR), the API server's
// KUBERNETES_SERVICE_* variables pointing at the loopback API server, POOLKEEPER_SERVICEACCOUNT_DIR when the
// service-account directory is mounted, LOCALKUBELET_* markers, then envFrom and env (with $(VAR) expansion).
func (w *podWorker) buildEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, m pathMapper, tmpDir string) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	cfg := w.k.cfg
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME", pod.Name)
	set("HOME", filepath.Join(w.podDir, "containers", c.Name, "root"))
	set("TMPDIR", tmpDir)
	if cfg.apiPort != "" {
		set("KUBERNETES_SERVICE_HOST", cfg.apiHost)
		set("KUBERNETES_SERVICE_PORT", cfg.apiPort)
		set("KUBERNETES_SERVICE_PORT_HTTPS", cfg.apiPort)
		set("KUBERNETES_PORT", "tcp://"+cfg.apiHost+":"+cfg.apiPort)
	}
	if p, ok := m.mapPath(serviceAccountMountPath); ok {
		set("POOLKEEPER_SERVICEACCOUNT_DIR", p)
	}
	set("LOCALKUBELET_STATE_DIR", cfg.stateDir)
	set("LOCALKUBELET_POD", pod.Namespace+"/"+pod.Name)
	var mounts []string
	for _, mt := range m {
		mounts = append(mounts, mt.ctrPath+"="+mt.hostPath)
	}
	set("LOCALKUBELET_MOUNTS", strings.Join(mounts, ":"))

	for _, ef := range c.EnvFrom {
		var data map[string][]byte
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, _, err = w.vols.configMap(ctx, pod.Namespace, ef.ConfigMapRef.Name, ptr.Deref(ef.ConfigMapRef.Optional, false))
		case ef.SecretRef != nil:
			data, _, err = w.vols.secret(ctx, pod.Namespace, ef.SecretRef.Name, ptr.Deref(ef.SecretRef.Optional, false))
		}
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(ef.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		v := expand(e.Value, vals)
		if vf := e.ValueFrom; vf != nil {
			var err error
			switch {
			case vf.FieldRef != nil:
				v, err = fieldValue(pod, vf.FieldRef.FieldPath, w.ip)
			case vf.ConfigMapKeyRef != nil:
				r := vf.ConfigMapKeyRef
				var d map[string][]byte
				var found bool
				d, found, err = w.vols.configMap(ctx, pod.Namespace, r.Name, ptr.Deref(r.Optional, false))
				if err == nil {
					bv, ok := d[r.Key]
					if !ok && !(ptr.Deref(r.Optional, false)) {
						err = fmt.Errorf("configmap %q has no key %q", r.Name, r.Key)
					} else if !ok || !found {
						continue
					}
					v = string(bv)
				}
			case vf.SecretKeyRef != nil:
				r := vf.SecretKeyRef
				var d map[string][]byte
				var found bool
				d, found, err = w.vols.secret(ctx, pod.Namespace, r.Name, ptr.Deref(r.Optional, false))
				if err == nil {
					bv, ok := d[r.Key]
					if !ok && !(ptr.Deref(r.Optional, false)) {
						err = fmt.Errorf("secret %q has no key %q", r.Name, r.Key)
					} else if !ok || !found {
						continue
					}
					v = string(bv)
				}
			case vf.ResourceFieldRef != nil:
				v = "0"
			default:
				err = fmt.Errorf("env %s: unsupported valueFrom", e.Name)
			}
			if err != nil {
				return nil, err
			}
		}
		set(e.Name, v)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env, nil
}

func fieldValue(pod *v1.Pod, fp string, ip string) (string, error) {
	sel := func(prefix string, m map[string]string) (string, bool) {
		if strings.HasPrefix(fp, prefix+"['") && strings.HasSuffix(fp, "']") {
			return m[fp[len(prefix)+2:len(fp)-2]], true
		}
		return "", false
	}
	if v, ok := sel("metadata.labels", pod.Labels); ok {
		return v, nil
	}
	if v, ok := sel("metadata.annotations", pod.Annotations); ok {
		return v, nil
	}
	kv := func(m map[string]string) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var b strings.Builder
		for _, k := range ks {
			fmt.Fprintf(&b, "%s=%q\n", k, m[k])
		}
		return b.String()
	}
	switch fp {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return kv(pod.Labels), nil
	case "metadata.annotations":
		return kv(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	case "status.podIP", "status.podIPs":
		return ip, nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", fp)
}

// start launches the process as the unprivileged run user in its own process group; it dies with localkubelet.
func (w *podWorker) start(l *launch, logPath string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: l.path, Args: l.argv, Env: l.env, Dir: l.dir, Stdout: lf, Stderr: lf}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(w.k.uid), Gid: uint32(w.k.gid), Groups: []uint32{}},
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, started: metav1.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.finished = metav1.Now()
		p.exitCode = 0
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					p.signal = ws.Signal()
					p.exitCode = 128 + int32(ws.Signal())
				} else {
					p.exitCode = int32(ee.ExitCode())
				}
			} else {
				p.exitCode = 128
			}
		}
		close(p.done)
		w.notifyExit()
	}()
	return p, nil
}

type proc struct {
	cmd      *exec.Cmd
	pid      int
	started  metav1.Time
	finished metav1.Time
	exitCode int32
	signal   syscall.Signal
	done     chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) kill(sig syscall.Signal) {
	if p.exited() {
		return
	}
	syscall.Kill(p.pid, sig)
}

func (p *proc) killGroup() {
	syscall.Kill(-p.pid, syscall.SIGKILL)
	syscall.Kill(p.pid, syscall.SIGKILL)
}
