/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Command operator runs the llm-gateway operator, or with `compile` compiles manifests into a
// snapshot with no cluster:
//
//	operator [flags]                          reconcile the CRDs and serve snapshots
//	operator compile -f PATH [-f PATH ...]    print the snapshot; exit 1 if any object is rejected
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/posthog/llm-gateway/controllers"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "compile" {
		os.Exit(controllers.RunCompile(os.Args[2:], os.Stdout, os.Stderr))
	}

	var cfg controllers.Config
	cfg.RegisterFlags(flag.CommandLine)
	zopts := zap.Options{}
	zopts.BindFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n       %s compile -f PATH [-f PATH ...] [flags]\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	log := ctrl.Log.WithName("operator")

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "cannot find a cluster (kubeconfig or in-cluster config)")
		os.Exit(1)
	}
	if err := controllers.Run(ctrl.SetupSignalHandler(), restConfig, cfg); err != nil {
		log.Error(err, "operator stopped")
		os.Exit(1)
	}
}
