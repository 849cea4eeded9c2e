// Tooling only: CoreDNS for devcluster's cluster DNS, built from the pinned CoreDNS module with just the plugins
// devcluster's Corefile uses (src/dns.ts). The stock build links every plugin, cloud providers' SDKs included,
// which only lengthens a cold build.
package main

import (
	"github.com/coredns/coredns/coremain"

	// Each plugin registers itself; the server runs them in CoreDNS's own order (dnsserver.Directives), and a
	// directive whose plugin is not linked in is an error in the Corefile.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
