package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

type probeCount struct{ succ, fail int }

// ctr is the runtime state of one container of a pod.
type ctr struct {
	spec         v1.Container
	launch       *launch
	launchErr    error
	p            *proc
	gen          int
	everStarted  bool
	restartCount int32
	lastTerm     *v1.ContainerStateTerminated
	term         *v1.ContainerStateTerminated // final state: not restarted
	nextStart    time.Time
	backoff      time.Duration
	delay        time.Duration // current restart delay
	started      bool          // startup probe passed (or none)
	ready        bool
	probeCancel  context.CancelFunc
	counts       map[string]*probeCount
	eventedErr   string
}

type condState struct {
	status v1.ConditionStatus
	since  metav1.Time
}

// podWorker owns one pod on this node: its address, volumes, processes and status.
type podWorker struct {
	k         *kubelet
	uid       types.UID
	ns, name  string
	mu        sync.Mutex
	latest    *v1.Pod
	updCh     chan struct{}
	exitCh    chan struct{}
	probeCh   chan probeResult
	goneCh    chan struct{}
	goneOnce  sync.Once
	podDir    string
	ip        string
	vols      *volumeSet
	volsReady bool
	volErr    string
	lastVol   time.Time
	ctrs      []*ctr
	startTime metav1.Time
	conds     map[v1.PodConditionType]condState
	last      *v1.PodStatus
	extraDirs []string

	pmu  sync.Mutex
	live map[int]*proc
}

func newPodWorker(k *kubelet, p *v1.Pod) *podWorker {
	w := &podWorker{
		k: k, uid: p.UID, ns: p.Namespace, name: p.Name, latest: p,
		updCh: make(chan struct{}, 1), exitCh: make(chan struct{}, 1), probeCh: make(chan probeResult, 64),
		goneCh: make(chan struct{}), conds: map[v1.PodConditionType]condState{}, live: map[int]*proc{},
	}
	w.vols = &volumeSet{w: w, dirs: map[string]string{}, hashes: map[string]string{}, tokens: map[string]*tokenState{}}
	return w
}

func (w *podWorker) update(p *v1.Pod) {
	w.mu.Lock()
	w.latest = p
	w.mu.Unlock()
	select {
	case w.updCh <- struct{}{}:
	default:
	}
}

func (w *podWorker) pod() *v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func (w *podWorker) notifyExit() {
	select {
	case w.exitCh <- struct{}{}:
	default:
	}
}

// gone: the pod object no longer exists (deleted with grace 0 by someone, or by us): stop everything now.
func (w *podWorker) gone() { w.goneOnce.Do(func() { close(w.goneCh) }) }

func (w *podWorker) isGone() bool {
	select {
	case <-w.goneCh:
		return true
	default:
		return false
	}
}

func (w *podWorker) killAllNow() {
	w.pmu.Lock()
	ps := make([]*proc, 0, len(w.live))
	for _, p := range w.live {
		ps = append(ps, p)
	}
	w.pmu.Unlock()
	for _, p := range ps {
		p.killGroup()
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
		}
	}
}

func (w *podWorker) run(ctx context.Context) {
	defer w.k.forget(w.uid)
	pod := w.pod()
	w.podDir = filepath.Join(w.k.podsDir, string(w.uid))
	if err := os.MkdirAll(w.podDir, 0o755); err != nil {
		log.Printf("pod %s/%s: %v", w.ns, w.name, err)
	}
	w.ip = w.k.allocIP()
	defer w.k.releaseIP(w.ip)
	w.startTime = metav1.Now()
	if pod.Status.StartTime != nil {
		w.startTime = *pod.Status.StartTime
	}
	for _, c := range pod.Spec.Containers {
		w.ctrs = append(w.ctrs, &ctr{spec: c, counts: map[string]*probeCount{}})
	}
	if len(pod.Spec.InitContainers) > 0 {
		for _, c := range w.ctrs {
			c.launchErr = errNotRunnable{"localkubelet does not run init containers"}
		}
	}
	log.Printf("pod %s/%s (%s): starting on %s", w.ns, w.name, w.uid, w.ip)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pod = w.pod()
		if w.isGone() {
			w.killAllNow()
			w.cleanup()
			return
		}
		if pod.DeletionTimestamp != nil {
			w.terminate(ctx, pod)
			return
		}
		w.syncVolumes(ctx, pod)
		if w.volsReady {
			for _, c := range w.ctrs {
				w.syncContainer(ctx, pod, c)
			}
		}
		w.pushStatus(ctx, pod, false)
		select {
		case <-ctx.Done():
			w.killAllNow()
			return
		case <-w.goneCh:
		case <-w.updCh:
		case <-w.exitCh:
		case <-tick.C:
		case r := <-w.probeCh:
			w.handleProbe(r)
		drain:
			for {
				select {
				case r := <-w.probeCh:
					w.handleProbe(r)
				default:
					break drain
				}
			}
		}
	}
}

func (w *podWorker) syncVolumes(ctx context.Context, pod *v1.Pod) {
	if w.volsReady && time.Since(w.lastVol) < 10*time.Second {
		return
	}
	if !w.volsReady && w.volErr != "" && time.Since(w.lastVol) < 2*time.Second {
		return
	}
	w.lastVol = time.Now()
	if err := w.vols.sync(ctx, pod); err != nil {
		msg := "MountVolume.SetUp failed: " + err.Error()
		if !w.volsReady && msg != w.volErr {
			w.k.recorder.Event(pod, v1.EventTypeWarning, "FailedMount", msg)
		}
		w.volErr = msg
		log.Printf("pod %s/%s: %s", w.ns, w.name, msg)
		return
	}
	w.volsReady, w.volErr = true, ""
	// A changed ConfigMap shows up in the rewritten pgbouncer.ini too (pgbouncer reads it on RELOAD/SIGHUP).
	for _, c := range w.ctrs {
		if c.launch != nil && c.launch.iniSrc != "" {
			if err := w.renderIni(c.launch); err != nil {
				log.Printf("pod %s/%s: %v", w.ns, w.name, err)
			}
		}
	}
}

func (w *podWorker) logPath(c *ctr) string {
	return filepath.Join(w.k.logsDir, fmt.Sprintf("%s_%s_%s", w.ns, w.name, w.uid), c.spec.Name,
		strconv.Itoa(int(c.restartCount))+".log")
}

func (w *podWorker) restartPolicy(pod *v1.Pod) v1.RestartPolicy {
	if pod.Spec.RestartPolicy == "" {
		return v1.RestartPolicyAlways
	}
	return pod.Spec.RestartPolicy
}

func (w *podWorker) syncContainer(ctx context.Context, pod *v1.Pod, c *ctr) {
	if c.p != nil {
		if !c.p.exited() {
			return
		}
		w.reap(pod, c)
	}
	if c.term != nil {
		return
	}
	var nr errNotRunnable
	if errors.As(c.launchErr, &nr) {
		if c.eventedErr != nr.msg {
			c.eventedErr = nr.msg
			w.k.recorder.Eventf(pod, v1.EventTypeWarning, "ImageNotRunnable", "container %s: %s", c.spec.Name, nr.msg)
		}
		return
	}
	if time.Now().Before(c.nextStart) {
		return
	}
	l, err := w.buildLaunch(ctx, pod, &c.spec)
	if err != nil {
		c.launchErr = err
		if c.eventedErr != err.Error() {
			c.eventedErr = err.Error()
			reason := "Failed"
			if errors.As(err, &nr) {
				reason = "ImageNotRunnable"
			}
			w.k.recorder.Eventf(pod, v1.EventTypeWarning, reason, "Error: container %s: %v", c.spec.Name, err)
		}
		return
	}
	c.launchErr, c.eventedErr = nil, ""
	if c.everStarted {
		c.restartCount++
	}
	p, err := w.start(l, w.logPath(c))
	if err != nil {
		c.launchErr = configError{"starting process: " + err.Error()}
		w.k.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: container %s: %v", c.spec.Name, err)
		return
	}
	c.everStarted = true
	c.launch, c.p = l, p
	c.gen++
	c.ready, c.started = false, c.spec.StartupProbe == nil
	c.counts = map[string]*probeCount{}
	w.pmu.Lock()
	w.live[p.pid] = p
	w.pmu.Unlock()
	os.WriteFile(filepath.Join(w.podDir, "containers", c.spec.Name, "pid"), []byte(strconv.Itoa(p.pid)+"\n"), 0o644)
	log.Printf("pod %s/%s: container %s started: pid %d, %s %s", w.ns, w.name, c.spec.Name, p.pid, l.path,
		strings.Join(l.argv[1:], " "))
	w.k.recorder.Eventf(pod, v1.EventTypeNormal, "Created", "Created container: %s", c.spec.Name)
	w.k.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s (%s, pid %d)", c.spec.Name, l.kind, p.pid)
	pctx, cancel := context.WithCancel(ctx)
	c.probeCancel = cancel
	w.startProbes(pctx, c)
}

// reap records a container's exit and schedules its restart per restartPolicy, with crash-loop back-off.
func (w *podWorker) reap(pod *v1.Pod, c *ctr) {
	p := c.p
	c.p = nil
	w.pmu.Lock()
	delete(w.live, p.pid)
	w.pmu.Unlock()
	syscall.Kill(-p.pid, syscall.SIGKILL) // leftovers of its process group
	if c.probeCancel != nil {
		c.probeCancel()
	}
	c.ready, c.started = false, false
	reason := "Completed"
	if p.exitCode != 0 {
		reason = "Error"
	}
	t := &v1.ContainerStateTerminated{
		ExitCode: p.exitCode, Signal: int32(p.signal), Reason: reason, StartedAt: p.started, FinishedAt: p.finished,
		ContainerID: containerID(c.spec.Name, p.pid),
	}
	log.Printf("pod %s/%s: container %s exited with %d", w.ns, w.name, c.spec.Name, p.exitCode)
	pol := w.restartPolicy(pod)
	if pol == v1.RestartPolicyAlways || pol == v1.RestartPolicyOnFailure && p.exitCode != 0 {
		c.lastTerm = t
		if p.finished.Sub(p.started.Time) > 10*time.Minute {
			c.backoff = 0
		}
		// As the kubelet: the first restart is immediate, then 10 s, 20 s, ... up to 5 min (reset after 10 min
		// of running).
		delay := c.backoff
		c.delay = delay
		c.nextStart = time.Now().Add(delay)
		if c.backoff == 0 {
			c.backoff = w.k.cfg.backoffInitial
		} else if c.backoff *= 2; c.backoff > w.k.cfg.backoffMax {
			c.backoff = w.k.cfg.backoffMax
		}
		if delay > 0 {
			w.k.recorder.Eventf(pod, v1.EventTypeWarning, "BackOff", "Back-off %s restarting failed container %s", delay, c.spec.Name)
		}
	} else {
		c.term = t
	}
}

func containerID(name string, pid int) string { return fmt.Sprintf("localkubelet://%s-%d", name, pid) }

func (w *podWorker) handleProbe(r probeResult) {
	var c *ctr
	for _, x := range w.ctrs {
		if x.spec.Name == r.container {
			c = x
		}
	}
	if c == nil || c.p == nil || c.gen != r.gen || c.p.exited() {
		return
	}
	pr := map[string]*v1.Probe{"Startup": c.spec.StartupProbe, "Readiness": c.spec.ReadinessProbe, "Liveness": c.spec.LivenessProbe}[r.kind]
	cnt := c.counts[r.kind]
	if cnt == nil {
		cnt = &probeCount{}
		c.counts[r.kind] = cnt
	}
	if r.ok {
		cnt.succ++
		cnt.fail = 0
	} else {
		cnt.fail++
		cnt.succ = 0
		w.k.recorder.Eventf(w.pod(), v1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", r.kind, r.msg)
	}
	failTh := int(pr.FailureThreshold)
	if failTh < 1 {
		failTh = 3
	}
	succTh := int(pr.SuccessThreshold)
	if succTh < 1 {
		succTh = 1
	}
	switch r.kind {
	case "Startup":
		if r.ok {
			c.started = true
			if c.spec.ReadinessProbe == nil {
				c.ready = true
			}
		} else if cnt.fail >= failTh {
			w.killForRestart(c, "failed startup probe")
		}
	case "Readiness":
		if !c.started {
			return
		}
		if r.ok && cnt.succ >= succTh {
			c.ready = true
		} else if !r.ok && cnt.fail >= failTh {
			c.ready = false
		}
	case "Liveness":
		if c.started && !r.ok && cnt.fail >= failTh {
			w.killForRestart(c, "failed liveness probe")
		}
	}
}

// killForRestart stops a container whose probe failed; its exit is then handled as any other exit.
func (w *podWorker) killForRestart(c *ctr, why string) {
	p := c.p
	if c.probeCancel != nil {
		c.probeCancel()
	}
	w.k.recorder.Eventf(w.pod(), v1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", c.spec.Name, why)
	grace := time.Duration(ptr.Deref(w.pod().Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	go func() {
		p.kill(stopSignal(&c.spec))
		select {
		case <-p.done:
		case <-time.After(grace):
			p.killGroup()
		}
	}()
}

func stopSignal(c *v1.Container) syscall.Signal {
	if c.Lifecycle != nil && c.Lifecycle.StopSignal != nil {
		if s, ok := signalByName(string(*c.Lifecycle.StopSignal)); ok {
			return s
		}
	}
	return syscall.SIGTERM
}

// terminate stops the pod's containers the way the kubelet does on deletion: preStop hook, then the stop signal,
// then SIGKILL when the grace period is over; then it reports the final status and deletes the pod (grace 0).
func (w *podWorker) terminate(ctx context.Context, pod *v1.Pod) {
	grace := ptr.Deref(pod.DeletionGracePeriodSeconds, ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30))
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	log.Printf("pod %s/%s: terminating, grace period %ds", w.ns, w.name, grace)
	var wg sync.WaitGroup
	for _, c := range w.ctrs {
		if c.p == nil || c.p.exited() {
			continue
		}
		if c.probeCancel != nil {
			c.probeCancel()
		}
		c.ready = false
		w.k.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
		wg.Add(1)
		go func(c *ctr, p *proc) {
			defer wg.Done()
			w.stopContainer(ctx, pod, c, p, deadline)
		}(c, c.p)
	}
	w.pushStatus(ctx, pod, false) // not ready while stopping
	wg.Wait()
	allOK := true
	for _, c := range w.ctrs {
		if c.p != nil {
			p := c.p
			c.p = nil
			w.pmu.Lock()
			delete(w.live, p.pid)
			w.pmu.Unlock()
			reason := "Completed"
			if p.exitCode != 0 {
				reason = "Error"
			}
			c.term = &v1.ContainerStateTerminated{ExitCode: p.exitCode, Signal: int32(p.signal), Reason: reason,
				StartedAt: p.started, FinishedAt: p.finished, ContainerID: containerID(c.spec.Name, p.pid)}
		}
		if c.term == nil || c.term.ExitCode != 0 {
			allOK = false
		}
		c.started, c.ready = false, false
	}
	if !w.isGone() {
		w.pushStatus(ctx, pod, true, func(st *v1.PodStatus) {
			st.Phase = v1.PodFailed
			if allOK {
				st.Phase = v1.PodSucceeded
			}
		})
		w.k.deleteFinal(ctx, pod)
	}
	w.cleanup()
	log.Printf("pod %s/%s: terminated", w.ns, w.name)
}

func (w *podWorker) cleanup() {
	for _, d := range w.extraDirs {
		os.RemoveAll(d)
	}
	if w.podDir != "" {
		os.RemoveAll(w.podDir)
	}
}

func (w *podWorker) stopContainer(ctx context.Context, pod *v1.Pod, c *ctr, p *proc, deadline time.Time) {
	if lc := c.spec.Lifecycle; lc != nil && lc.PreStop != nil {
		if err := w.runPreStop(ctx, c, p, lc.PreStop, deadline); err != nil {
			w.k.recorder.Eventf(pod, v1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
		}
	}
	if !p.exited() {
		p.kill(stopSignal(&c.spec))
	}
	remaining := time.Until(deadline)
	if remaining < 2*time.Second && c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
		remaining = 2 * time.Second // the kubelet's minimum after a preStop hook used up the grace period
	}
	select {
	case <-p.done:
	case <-w.goneCh:
		p.killGroup()
		<-p.done
	case <-time.After(remaining):
		log.Printf("pod %s/%s: container %s still running after the grace period: SIGKILL", w.ns, w.name, c.spec.Name)
		p.killGroup()
		<-p.done
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
}

// pushStatus writes the pod status when it changed (or when forced).
func (w *podWorker) pushStatus(ctx context.Context, pod *v1.Pod, force bool, mods ...func(*v1.PodStatus)) {
	st := w.computeStatus(pod)
	for _, m := range mods {
		m(&st)
	}
	if !force && w.last != nil && equality.Semantic.DeepEqual(&st, w.last) {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := w.k.cs.CoreV1().Pods(w.ns).Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != w.uid {
			return nil
		}
		var conds []v1.PodCondition
		ours := map[v1.PodConditionType]bool{}
		for _, c := range st.Conditions {
			ours[c.Type] = true
		}
		for _, c := range cur.Status.Conditions {
			if !ours[c.Type] {
				conds = append(conds, c)
			}
		}
		next := cur.Status.DeepCopy()
		next.Conditions = append(conds, st.Conditions...)
		next.Phase = st.Phase
		next.HostIP, next.HostIPs = st.HostIP, st.HostIPs
		next.PodIP, next.PodIPs = st.PodIP, st.PodIPs
		next.StartTime = st.StartTime
		next.ContainerStatuses = st.ContainerStatuses
		next.Message, next.Reason = st.Message, st.Reason
		cur.Status = *next
		_, err = w.k.cs.CoreV1().Pods(w.ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			log.Printf("pod %s/%s: status: %v", w.ns, w.name, err)
		}
		return
	}
	w.last = &st
}

func (w *podWorker) cond(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
	s := v1.ConditionFalse
	if ok {
		s, reason, msg = v1.ConditionTrue, "", ""
	}
	cs, have := w.conds[t]
	if !have || cs.status != s {
		cs = condState{status: s, since: metav1.Now()}
		w.conds[t] = cs
	}
	return v1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: cs.since}
}

func (w *podWorker) computeStatus(pod *v1.Pod) v1.PodStatus {
	st := v1.PodStatus{
		HostIP:    "127.0.0.1",
		HostIPs:   []v1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     w.ip,
		PodIPs:    []v1.PodIP{{IP: w.ip}},
		StartTime: &w.startTime,
	}
	var unready []string
	running, waiting, waitingNeverRan, succeeded, failed := 0, 0, 0, 0, 0
	for _, c := range w.ctrs {
		cs := v1.ContainerStatus{
			Name: c.spec.Name, Image: c.spec.Image, ImageID: "localkubelet://" + imageKind(c.spec.Image),
			RestartCount: c.restartCount, Ready: c.ready, Started: ptr.To(false),
		}
		if c.lastTerm != nil {
			cs.LastTerminationState.Terminated = c.lastTerm
		}
		switch {
		case c.p != nil && !c.p.exited():
			running++
			cs.State.Running = &v1.ContainerStateRunning{StartedAt: c.p.started}
			cs.ContainerID = containerID(c.spec.Name, c.p.pid)
			cs.Started = ptr.To(c.started)
			cs.Ready = c.ready
		case c.p != nil: // exited, not reaped yet
			running++
			cs.State.Running = &v1.ContainerStateRunning{StartedAt: c.p.started}
			cs.ContainerID = containerID(c.spec.Name, c.p.pid)
			cs.Ready = false
		case c.term != nil:
			cs.State.Terminated = c.term
			cs.ContainerID = c.term.ContainerID
			cs.Ready = false
			if c.term.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		default:
			cs.Ready = false
			waiting++
			if !c.everStarted {
				waitingNeverRan++
			}
			ws := &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
			var nr errNotRunnable
			var ce configError
			switch {
			case errors.As(c.launchErr, &nr):
				ws.Reason, ws.Message = "ImageNotRunnable", nr.msg
			case errors.As(c.launchErr, &ce):
				ws.Reason, ws.Message = "CreateContainerConfigError", ce.msg
			case c.everStarted && time.Now().Before(c.nextStart):
				ws.Reason = "CrashLoopBackOff"
				ws.Message = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.delay,
					c.spec.Name, w.name, w.ns, w.uid)
			}
			cs.State.Waiting = ws
		}
		if !cs.Ready {
			unready = append(unready, c.spec.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	n := len(w.ctrs)
	pol := w.restartPolicy(pod)
	switch {
	case waitingNeverRan > 0:
		st.Phase = v1.PodPending
	case running > 0 || waiting > 0:
		st.Phase = v1.PodRunning
	case succeeded+failed == n && pol == v1.RestartPolicyAlways:
		st.Phase = v1.PodRunning
	case failed > 0:
		st.Phase = v1.PodFailed
	default:
		st.Phase = v1.PodSucceeded
	}
	ctrsReady := len(unready) == 0
	msg := ""
	if !ctrsReady {
		msg = fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	ready := ctrsReady
	readyReason, readyMsg := "ContainersNotReady", msg
	if ctrsReady {
		for _, g := range pod.Spec.ReadinessGates {
			ok := false
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType && c.Status == v1.ConditionTrue {
					ok = true
				}
			}
			if !ok {
				ready, readyReason, readyMsg = false, "ReadinessGatesNotReady", "corresponding condition of pod readiness gate \""+string(g.ConditionType)+"\" does not exist or is not True"
			}
		}
	}
	st.Conditions = []v1.PodCondition{
		w.cond(v1.PodReadyToStartContainers, w.volsReady, "", ""),
		w.cond(v1.PodInitialized, true, "", ""),
		w.cond(v1.PodReady, ready, readyReason, readyMsg),
		w.cond(v1.ContainersReady, ctrsReady, "ContainersNotReady", msg),
	}
	return st
}
