// vcsim launcher for tests: govmomi's vSphere API simulator (Debian's
// golang-github-vmware-govmomi-dev ships the library, not the command).
// Prints "VCSIM_URL=<sdk url>" once it serves; stops on SIGTERM/SIGINT.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	user := flag.String("user", "", "require exactly this user (empty: any login is accepted)")
	password := flag.String("password", "", "the password that goes with -user")
	esx := flag.Bool("esx", false, "simulate a standalone ESXi host instead of a vCenter")
	dc := flag.Int("dc", 1, "datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	host := flag.Int("host", 1, "standalone hosts per datacenter")
	clusterHost := flag.Int("cluster-host", 3, "hosts per cluster")
	vm := flag.Int("vm", 2, "virtual machines per resource pool")
	flag.Parse()

	model := simulator.VPX()
	if *esx {
		model = simulator.ESX()
	}
	model.Datacenter = *dc
	model.Cluster = *cluster
	model.Host = *host
	model.ClusterHost = *clusterHost
	model.Machine = *vm
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()

	model.Service.TLS = new(tls.Config)
	model.Service.Listen = &url.URL{Host: *listen}
	if *user != "" {
		model.Service.Listen.User = url.UserPassword(*user, *password)
	}
	server := model.Service.NewServer()
	defer server.Close()

	sdk := *server.URL
	sdk.User = nil
	fmt.Printf("VCSIM_URL=%s\n", sdk.String())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
