// Command localkubelet is a small stand-in for the kubelet, for the poolkeeper test cluster.
//
// It registers one Node, binds every unscheduled pod to it, and runs the pods it can run as local processes:
// PgBouncer images as /usr/sbin/pgbouncer, the poolkeeper image as the locally built operator binary. Each pod
// gets its own loopback address (127.N.x.y); ConfigMap, Secret, projected (service-account token through the
// TokenRequest API, kube-root-ca.crt, downward API) and emptyDir volumes are materialised in a per-pod directory,
// and the container's mount paths are mapped onto them. Status is reported as the kubelet does (phase, podIP,
// container states, probes, Ready), containers are restarted per restartPolicy with back-off, and deletion honours
// preStop and the grace period. See ../../README.md for exactly what is and is not emulated.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

type config struct {
	kubeconfig     string
	nodeName       string
	stateDir       string
	podIPPrefix    string // "127.N": pods get 127.N.x.y
	runAs          string
	poolkeeperBin  string
	pgbouncerBin   string
	apiHost        string
	apiPort        string
	kubeVersion    string
	backoffInitial time.Duration
	backoffMax     time.Duration
}

type kubelet struct {
	cfg      config
	cs       kubernetes.Interface
	recorder record.EventRecorder // component "kubelet"
	schedRec record.EventRecorder // component "default-scheduler" (we bind pods)
	uid, gid int
	podsDir  string
	logsDir  string

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	binding map[types.UID]bool
	ips     map[string]bool
	nextIP  int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "free-ports" {
		freePorts(os.Args[2:])
		return
	}
	var c config
	flag.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig of the API server")
	flag.StringVar(&c.nodeName, "node-name", "local", "name of the Node to register")
	flag.StringVar(&c.stateDir, "state-dir", "", "directory for pod volumes, logs and pid files")
	flag.StringVar(&c.podIPPrefix, "pod-ip-prefix", "127.77", "pods get addresses PREFIX.x.y (a /16 of 127.0.0.0/8)")
	flag.StringVar(&c.runAs, "run-as", "postgres", "unprivileged user that runs every pod process")
	flag.StringVar(&c.poolkeeperBin, "poolkeeper-bin", "", "binary run for images named like poolkeeper")
	flag.StringVar(&c.pgbouncerBin, "pgbouncer-bin", "/usr/sbin/pgbouncer", "binary run for pgbouncer images")
	flag.StringVar(&c.apiHost, "api-host", "127.0.0.1", "KUBERNETES_SERVICE_HOST given to pods")
	flag.StringVar(&c.apiPort, "api-port", "", "KUBERNETES_SERVICE_PORT given to pods")
	flag.StringVar(&c.kubeVersion, "kubelet-version", "v1.35.4", "version reported in node.status.nodeInfo")
	flag.DurationVar(&c.backoffInitial, "restart-backoff-initial", 10*time.Second, "first crash-loop back-off")
	flag.DurationVar(&c.backoffMax, "restart-backoff-max", 300*time.Second, "maximum crash-loop back-off")
	flag.Parse()
	if c.kubeconfig == "" || c.stateDir == "" {
		log.Fatal("--kubeconfig and --state-dir are required")
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	rc.QPS, rc.Burst = 100, 200
	rc.UserAgent = "localkubelet/" + c.kubeVersion
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		log.Fatal(err)
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		log.Fatalf("user %q: %v", c.runAs, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	k := &kubelet{
		cfg:      c,
		cs:       cs,
		recorder: bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: c.nodeName}),
		schedRec: bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "default-scheduler"}),
		uid:      uid,
		gid:      gid,
		workers:  map[types.UID]*podWorker{},
		binding:  map[types.UID]bool{},
		ips:      map[string]bool{},
	}
	if err := k.prepareDirs(); err != nil {
		log.Fatal(err)
	}
	if err := k.registerNode(ctx); err != nil {
		log.Fatalf("register node: %v", err)
	}
	go k.heartbeat(ctx)

	factory := informers.NewSharedInformerFactory(cs, 30*time.Second)
	podInf := factory.Core().V1().Pods().Informer()
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o interface{}) { k.onPod(ctx, o.(*v1.Pod)) },
		UpdateFunc: func(_, o interface{}) { k.onPod(ctx, o.(*v1.Pod)) },
		DeleteFunc: func(o interface{}) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if p, ok := o.(*v1.Pod); ok {
				k.onPodGone(p)
			}
		},
	})
	factory.Start(ctx.Done())
	log.Printf("localkubelet %s: node %s, pods on %s.x.y, running pods as %s (uid %d)", c.kubeVersion, c.nodeName,
		c.podIPPrefix, c.runAs, uid)
	<-ctx.Done()
	log.Printf("stopping: killing all pod processes")
	k.mu.Lock()
	ws := make([]*podWorker, 0, len(k.workers))
	for _, w := range k.workers {
		ws = append(ws, w)
	}
	k.mu.Unlock()
	for _, w := range ws {
		w.killAllNow()
	}
	bc.Shutdown()
}

// freePorts prints N free TCP ports on 127.0.0.1, one a line (held open together so they are distinct).
func freePorts(args []string) {
	n := 1
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
}

// prepareDirs creates the pods and logs directories and checks that the unprivileged user can reach them.
func (k *kubelet) prepareDirs() error {
	k.podsDir = filepath.Join(k.cfg.stateDir, "pods")
	k.logsDir = filepath.Join(k.cfg.stateDir, "logs")
	for _, d := range []string{k.podsDir, k.logsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		os.Chmod(d, 0o755)
	}
	// Every parent must be searchable by the run user (mktemp -d makes 0700 directories).
	for d := k.podsDir; d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by %s (mode %v): chmod o+x it", d, k.cfg.runAs, st.Mode().Perm())
		}
	}
	return nil
}

func (k *kubelet) registerNode(ctx context.Context) error {
	name := k.cfg.nodeName
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
				"beta.kubernetes.io/os":  "linux",
			},
		},
	}
	if _, err := k.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := k.updateNodeStatus(ctx); err != nil {
		return err
	}
	// The TaintNodesByCondition admission plugin taints new nodes not-ready; the node lifecycle controller
	// (not run here) removes the taint once the node is Ready. Do that ourselves.
	for i := 0; i < 5; i++ {
		n, err := k.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var keep []v1.Taint
		for _, t := range n.Spec.Taints {
			if t.Key != "node.kubernetes.io/not-ready" && t.Key != "node.kubernetes.io/unreachable" {
				keep = append(keep, t)
			}
		}
		if len(keep) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = keep
		if _, err = k.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err == nil {
			return nil
		} else if !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

func (k *kubelet) updateNodeStatus(ctx context.Context) error {
	now := metav1.Now()
	for i := 0; i < 5; i++ {
		n, err := k.cs.CoreV1().Nodes().Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cond := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
			c := v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
			for _, old := range n.Status.Conditions {
				if old.Type == t && old.Status == s {
					c.LastTransitionTime = old.LastTransitionTime
				}
			}
			return c
		}
		n.Status.Conditions = []v1.NodeCondition{
			cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "localkubelet is posting ready status"),
		}
		res := v1.ResourceList{
			v1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			v1.ResourceMemory:           resource.MustParse("16Gi"),
			v1.ResourcePods:             *resource.NewQuantity(250, resource.DecimalSI),
			v1.ResourceEphemeralStorage: resource.MustParse("50Gi"),
		}
		n.Status.Capacity, n.Status.Allocatable = res, res
		n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "127.0.0.1"}, {Type: v1.NodeHostName, Address: k.cfg.nodeName}}
		n.Status.NodeInfo = v1.NodeSystemInfo{
			MachineID: "localkubelet", SystemUUID: "localkubelet", BootID: "localkubelet",
			KernelVersion: kernelVersion(), OSImage: "localkubelet (processes on the host)",
			ContainerRuntimeVersion: "localkubelet://1", KubeletVersion: k.cfg.kubeVersion,
			KubeProxyVersion: "", OperatingSystem: "linux", Architecture: runtime.GOARCH,
		}
		if _, err = k.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err == nil {
			return nil
		} else if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("node status: too many conflicts")
}

func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// heartbeat renews the node Lease every 10 s and the node status every minute, as the kubelet does.
func (k *kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		k.renewLease(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(last) > time.Minute {
			if err := k.updateNodeStatus(ctx); err != nil {
				log.Printf("node status: %v", err)
			}
			last = time.Now()
		}
	}
}

func (k *kubelet) renewLease(ctx context.Context) {
	leases := k.cs.CoordinationV1().Leases("kube-node-lease")
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		var owners []metav1.OwnerReference
		if n, err := k.cs.CoreV1().Nodes().Get(ctx, k.cfg.nodeName, metav1.GetOptions{}); err == nil {
			owners = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Namespace: "kube-node-lease", OwnerReferences: owners},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(k.cfg.nodeName), LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
	} else if err == nil {
		l.Spec.RenewTime = &now
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		log.Printf("lease: %v", err)
	}
}

// onPod dispatches a pod from the informer: bind it when unscheduled, hand it to its worker when it is ours.
func (k *kubelet) onPod(ctx context.Context, p *v1.Pod) {
	if p.Spec.NodeName == "" {
		if p.DeletionTimestamp == nil {
			k.bind(ctx, p)
		}
		return
	}
	if p.Spec.NodeName != k.cfg.nodeName {
		return
	}
	k.mu.Lock()
	w := k.workers[p.UID]
	if w == nil {
		if isTerminalPhase(p) || p.DeletionTimestamp != nil && len(p.Status.ContainerStatuses) == 0 && p.Status.PodIP == "" {
			// Finished, or deleted before we ever started it: nothing to run.
			k.mu.Unlock()
			if p.DeletionTimestamp != nil {
				k.deleteFinal(ctx, p)
			}
			return
		}
		w = newPodWorker(k, p)
		k.workers[p.UID] = w
		go w.run(ctx)
	}
	k.mu.Unlock()
	w.update(p)
}

func isTerminalPhase(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

func (k *kubelet) onPodGone(p *v1.Pod) {
	k.mu.Lock()
	w := k.workers[p.UID]
	k.mu.Unlock()
	if w != nil {
		w.gone()
	}
}

func (k *kubelet) forget(uid types.UID) {
	k.mu.Lock()
	delete(k.workers, uid)
	k.mu.Unlock()
}

// bind assigns an unscheduled pod to our node (no scheduler runs: node selectors, affinity and taints are not
// evaluated; there is only one node).
func (k *kubelet) bind(ctx context.Context, p *v1.Pod) {
	k.mu.Lock()
	if k.binding[p.UID] {
		k.mu.Unlock()
		return
	}
	k.binding[p.UID] = true
	k.mu.Unlock()
	go func() {
		defer func() {
			k.mu.Lock()
			delete(k.binding, p.UID)
			k.mu.Unlock()
		}()
		b := &v1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
			Target:     v1.ObjectReference{Kind: "Node", Name: k.cfg.nodeName},
		}
		if err := k.cs.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
			if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				log.Printf("bind %s/%s: %v", p.Namespace, p.Name, err)
				k.schedRec.Eventf(p, v1.EventTypeWarning, "FailedScheduling", "binding to %s: %v", k.cfg.nodeName, err)
			}
			return
		}
		k.schedRec.Eventf(p, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", p.Namespace, p.Name, k.cfg.nodeName)
	}()
}

// deleteFinal removes a pod object whose containers are all stopped (the kubelet's final grace-0 delete).
func (k *kubelet) deleteFinal(ctx context.Context, p *v1.Pod) {
	err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &p.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Printf("delete %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// allocIP hands out the next free 127.N.x.y (x in 1..254, y in 1..254).
func (k *kubelet) allocIP() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := 0; i < 254*254; i++ {
		n := k.nextIP % (254 * 254)
		k.nextIP++
		ip := fmt.Sprintf("%s.%d.%d", k.cfg.podIPPrefix, n/254+1, n%254+1)
		if !k.ips[ip] {
			k.ips[ip] = true
			return ip
		}
	}
	return ""
}

func (k *kubelet) releaseIP(ip string) {
	k.mu.Lock()
	delete(k.ips, ip)
	k.mu.Unlock()
}
