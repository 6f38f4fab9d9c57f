/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import "fmt"

// Replicas is how many live gateway pods serve a version.
type Replicas struct {
	Version string
	Ready   int
	Total   int
}

// Count returns how many of the pods applied version.
func Count(pods []Pod, version string) Replicas {
	r := Replicas{Version: version, Total: len(pods)}
	for _, p := range pods {
		if p.Applied == version {
			r.Ready++
		}
	}
	return r
}

// AllReady reports whether at least one pod is live and every live pod serves the version.
func (r Replicas) AllReady() bool { return r.Total > 0 && r.Ready == r.Total }

// String renders "N/M replicas at version X".
func (r Replicas) String() string {
	return fmt.Sprintf("%d/%d replicas at version %s", r.Ready, r.Total, r.Version)
}
