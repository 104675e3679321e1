// Command kube-controller-manager is the upstream controller manager
// (k8s.io/kubernetes/cmd/kube-controller-manager/app), built from the k8s.io/kubernetes Go module.
// Same body as upstream cmd/kube-controller-manager/controller-manager.go.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugin
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	command := app.NewControllerManagerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
