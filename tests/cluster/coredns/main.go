// Command coredns is the test cluster's DNS server: upstream CoreDNS (github.com/coredns/coredns/coremain),
// built from its Go module, so that <service>.<namespace>.svc.cluster.local resolves in pods as in a user's cluster.
//
// Upstream's main imports core/plugin, which links every plugin (route53, azure, clouddns, etcd, dnstap, ...)
// with their cloud SDKs. This one sets dnsserver.Directives (the plugins the Corefile may use, in execution order,
// a subset of upstream's plugin.cfg order) to just what the cluster needs and links only those. forward is left
// out on purpose: the test cluster must send nothing off the machine, so names outside the kubernetes zones get
// SERVFAIL instead of being forwarded, and a Corefile naming forward (or any other plugin) fails to load.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "log", "cache", "kubernetes"}
	coremain.Run()
}
