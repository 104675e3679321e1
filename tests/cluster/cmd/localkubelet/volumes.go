package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A file of a volume payload: relative path -> content and mode.
type fileData struct {
	data []byte
	mode os.FileMode
}

type tokenState struct {
	token   string
	refresh time.Time
}

// volumeSet materialises the pod's volumes under podDir/volumes/<name>.
type volumeSet struct {
	w      *podWorker
	dirs   map[string]string // volume name -> host dir
	hashes map[string]string // volume name -> payload hash written last
	tokens map[string]*tokenState
}

func (vs *volumeSet) hostDir(name string) string { return vs.dirs[name] }

// sync writes every volume; it returns an error (FailedMount) when a required object is missing or a volume
// type is not supported. It is called at start and then periodically, so ConfigMap/Secret/token changes show up
// in the files as they do under a real kubelet (atomic ..data symlink swap).
func (vs *volumeSet) sync(ctx context.Context, pod *v1.Pod) error {
	for _, vol := range pod.Spec.Volumes {
		dir := filepath.Join(vs.w.podDir, "volumes", vol.Name)
		vs.dirs[vol.Name] = dir
		switch {
		case vol.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
			os.Chmod(dir, 0o777)
			os.Chown(dir, vs.w.k.uid, vs.w.k.gid)
			continue
		case vol.ConfigMap != nil, vol.Secret != nil, vol.Projected != nil, vol.DownwardAPI != nil:
		default:
			return fmt.Errorf("volume %q: only configMap, secret, projected, downwardAPI and emptyDir volumes are supported by localkubelet", vol.Name)
		}
		payload, err := vs.payload(ctx, pod, vol)
		if err != nil {
			return fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		if err := vs.write(vol.Name, dir, payload); err != nil {
			return fmt.Errorf("volume %q: %w", vol.Name, err)
		}
	}
	return nil
}

func modeOr(m *int32, def int32) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return os.FileMode(def)
}

// keyed projects data (keys -> bytes) honouring items (key, path, mode) and the default mode.
func keyed(data map[string][]byte, items []v1.KeyToPath, defMode os.FileMode, optional bool, what string, out map[string]fileData) error {
	if len(items) == 0 {
		for k, v := range data {
			out[k] = fileData{v, defMode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		m := defMode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = fileData{v, m}
	}
	return nil
}

func (vs *volumeSet) configMap(ctx context.Context, ns string, name string, optional bool) (map[string][]byte, bool, error) {
	cm, err := vs.w.k.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("configmap %q: %w", name, err)
	}
	d := map[string][]byte{}
	for k, v := range cm.Data {
		d[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		d[k] = v
	}
	return d, true, nil
}

func (vs *volumeSet) secret(ctx context.Context, ns string, name string, optional bool) (map[string][]byte, bool, error) {
	s, err := vs.w.k.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("secret %q: %w", name, err)
	}
	return s.Data, true, nil
}

func (vs *volumeSet) payload(ctx context.Context, pod *v1.Pod, vol v1.Volume) (map[string]fileData, error) {
	out := map[string]fileData{}
	ns := pod.Namespace
	switch {
	case vol.ConfigMap != nil:
		src := vol.ConfigMap
		opt := ptr.Deref(src.Optional, false)
		d, _, err := vs.configMap(ctx, ns, src.Name, opt)
		if err != nil {
			return nil, err
		}
		return out, keyed(d, src.Items, modeOr(src.DefaultMode, 0o644), opt, "configmap "+src.Name, out)
	case vol.Secret != nil:
		src := vol.Secret
		opt := ptr.Deref(src.Optional, false)
		d, _, err := vs.secret(ctx, ns, src.SecretName, opt)
		if err != nil {
			return nil, err
		}
		return out, keyed(d, src.Items, modeOr(src.DefaultMode, 0o644), opt, "secret "+src.SecretName, out)
	case vol.DownwardAPI != nil:
		return out, vs.downward(pod, vol.DownwardAPI.Items, modeOr(vol.DownwardAPI.DefaultMode, 0o644), out)
	case vol.Projected != nil:
		def := modeOr(vol.Projected.DefaultMode, 0o644)
		for i, s := range vol.Projected.Sources {
			switch {
			case s.ConfigMap != nil:
				opt := ptr.Deref(s.ConfigMap.Optional, false)
				d, _, err := vs.configMap(ctx, ns, s.ConfigMap.Name, opt)
				if err != nil {
					return nil, err
				}
				if err := keyed(d, s.ConfigMap.Items, def, opt, "configmap "+s.ConfigMap.Name, out); err != nil {
					return nil, err
				}
			case s.Secret != nil:
				opt := ptr.Deref(s.Secret.Optional, false)
				d, _, err := vs.secret(ctx, ns, s.Secret.Name, opt)
				if err != nil {
					return nil, err
				}
				if err := keyed(d, s.Secret.Items, def, opt, "secret "+s.Secret.Name, out); err != nil {
					return nil, err
				}
			case s.DownwardAPI != nil:
				if err := vs.downward(pod, s.DownwardAPI.Items, def, out); err != nil {
					return nil, err
				}
			case s.ServiceAccountToken != nil:
				tok, err := vs.token(ctx, pod, fmt.Sprintf("%s/%d", vol.Name, i), s.ServiceAccountToken)
				if err != nil {
					return nil, err
				}
				m := def
				out[s.ServiceAccountToken.Path] = fileData{[]byte(tok), m}
			default:
				return nil, fmt.Errorf("projected source %d: only configMap, secret, downwardAPI and serviceAccountToken are supported", i)
			}
		}
		return out, nil
	}
	return out, nil
}

func (vs *volumeSet) downward(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, def os.FileMode, out map[string]fileData) error {
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %q: only fieldRef is supported", it.Path)
		}
		v, err := fieldValue(pod, it.FieldRef.FieldPath, vs.w.ip)
		if err != nil {
			return err
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = fileData{[]byte(v), m}
	}
	return nil
}

// token obtains a bound service-account token through the TokenRequest API (as the kubelet does) and renews it
// after 80 % of its lifetime.
func (vs *volumeSet) token(ctx context.Context, pod *v1.Pod, key string, src *v1.ServiceAccountTokenProjection) (string, error) {
	if t := vs.tokens[key]; t != nil && time.Now().Before(t.refresh) {
		return t.token, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(ptr.Deref(src.ExpirationSeconds, 3600)),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	res, err := vs.w.k.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %q: %w", sa, err)
	}
	life := time.Until(res.Status.ExpirationTimestamp.Time)
	vs.tokens[key] = &tokenState{token: res.Status.Token, refresh: time.Now().Add(life * 8 / 10)}
	return res.Status.Token, nil
}

func payloadHash(p map[string]fileData) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", k, p[k].mode, len(p[k].data))
		h.Write(p[k].data)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// write lays the payload out the way the kubelet's atomic writer does: files in a timestamped directory,
// "..data" a symlink to it (swapped atomically), and each top-level entry a symlink through "..data".
// Files get the requested mode and are owned by the run user (there is no fsGroup emulation; see README).
func (vs *volumeSet) write(name, dir string, payload map[string]fileData) error {
	h := payloadHash(payload)
	if vs.hashes[name] == h {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Chmod(dir, 0o755)
	ts := "..tmp_" + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	tsDir := filepath.Join(dir, ts)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return err
	}
	top := map[string]bool{}
	for rel, f := range payload {
		rel = filepath.Clean(rel)
		if strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			return fmt.Errorf("invalid path %q", rel)
		}
		top[strings.SplitN(rel, string(filepath.Separator), 2)[0]] = true
		p := filepath.Join(tsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chown(p, vs.w.k.uid, vs.w.k.gid); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode.Perm()); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	os.Remove(tmpLink)
	if err := os.Symlink(ts, tmpLink); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for t := range top {
		link := filepath.Join(dir, t)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", t) {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", t), link); err != nil {
			return err
		}
	}
	// Drop entries that left the payload, and the previous timestamped directory.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") || top[n] {
			continue
		}
		os.Remove(filepath.Join(dir, n))
	}
	if old != "" && old != ts {
		os.RemoveAll(filepath.Join(dir, old))
	}
	vs.hashes[name] = h
	return nil
}

// readFile returns a volume file's content (used to compare the ini before/after a sync).
func readFile(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

var _ = bytes.Equal
