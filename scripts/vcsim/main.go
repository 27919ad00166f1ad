// vcsim launcher for tests: govmomi's vSphere API simulator (Debian's
// golang-github-vmware-govmomi-dev ships the library, not the command).
// Prints "VCSIM_URL=<sdk url>" once it serves; stops on SIGTERM/SIGINT.
//
// The files in simulator/ beside this one are overlaid onto govmomi's package simulator by
// scripts/build-vcsim: acura_peer.go makes the simulator a replication peer (real disk sizes,
// snapshots that freeze disks, change block tracking, a test-only guest that writes into
// disks) and the patched copies of govmomi files carry its hooks (marked "acura:").
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// denyingAuthorizationManager answers privilege checks like the simulator's own manager
// (which grants everything) except for the privileges in deny, so tests can see how a
// client reports a user that lacks some. The simulator dispatches SOAP calls by method name
// on the registered object, so these methods shadow the embedded ones; the embedded value
// (not a pointer) must come first, because the property collector digs the mo type out of
// field 0.
type denyingAuthorizationManager struct {
	simulator.AuthorizationManager
	deny map[string]bool
}

func (m *denyingAuthorizationManager) availability(ids []string) []types.PrivilegeAvailability {
	var out []types.PrivilegeAvailability
	for _, id := range ids {
		out = append(out, types.PrivilegeAvailability{PrivId: id, IsGranted: !m.deny[id]})
	}
	return out
}

func (m *denyingAuthorizationManager) HasPrivilegeOnEntities(req *types.HasPrivilegeOnEntities) soap.HasFault {
	var p []types.EntityPrivilege
	for _, e := range req.Entity {
		p = append(p, types.EntityPrivilege{Entity: e, PrivAvailability: m.availability(req.PrivId)})
	}
	return &methods.HasPrivilegeOnEntitiesBody{Res: &types.HasPrivilegeOnEntitiesResponse{Returnval: p}}
}

func (m *denyingAuthorizationManager) HasUserPrivilegeOnEntities(req *types.HasUserPrivilegeOnEntities) soap.HasFault {
	var p []types.EntityPrivilege
	for _, e := range req.Entities {
		p = append(p, types.EntityPrivilege{Entity: e, PrivAvailability: m.availability(req.PrivId)})
	}
	return &methods.HasUserPrivilegeOnEntitiesBody{Res: &types.HasUserPrivilegeOnEntitiesResponse{Returnval: p}}
}

func (m *denyingAuthorizationManager) HasPrivilegeOnEntity(req *types.HasPrivilegeOnEntity) soap.HasFault {
	granted := make([]bool, len(req.PrivId))
	for i, id := range req.PrivId {
		granted[i] = !m.deny[id]
	}
	return &methods.HasPrivilegeOnEntityBody{Res: &types.HasPrivilegeOnEntityResponse{Returnval: granted}}
}

func (m *denyingAuthorizationManager) FetchUserPrivilegeOnEntities(req *types.FetchUserPrivilegeOnEntities) soap.HasFault {
	var granted []string
	for _, role := range m.RoleList {
		if role.Name != "Admin" {
			continue
		}
		for _, id := range role.Privilege {
			if !m.deny[id] {
				granted = append(granted, id)
			}
		}
	}
	var p []types.UserPrivilegeResult
	for _, e := range req.Entities {
		p = append(p, types.UserPrivilegeResult{Entity: e, Privileges: granted})
	}
	return &methods.FetchUserPrivilegeOnEntitiesBody{Res: &types.FetchUserPrivilegeOnEntitiesResponse{Returnval: p}}
}

// denyPrivileges swaps the registered AuthorizationManager for one that refuses ids.
func denyPrivileges(ids string) {
	deny := map[string]bool{}
	for _, id := range strings.Split(ids, ",") {
		if id = strings.TrimSpace(id); id != "" {
			deny[id] = true
		}
	}
	if len(deny) == 0 {
		return
	}
	ref := *simulator.Map.Get(types.ManagedObjectReference{Type: "ServiceInstance", Value: "ServiceInstance"}).(*simulator.ServiceInstance).Content.AuthorizationManager
	current := simulator.Map.Get(ref).(*simulator.AuthorizationManager)
	simulator.Map.Put(&denyingAuthorizationManager{AuthorizationManager: *current, deny: deny})
}

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
	deny := flag.String("deny-privileges", "", "comma-separated privilege ids every privilege check refuses")
	certFile := flag.String("tls-cert", "", "PEM certificate to serve (default: a built-in self-signed one)")
	keyFile := flag.String("tls-key", "", "PEM private key of -tls-cert")
	diskMiB := flag.Int64("disk-mib", 0, "every VM disk's capacity in MiB, with a sparse flat file of that size (0: vcsim's 1 MiB disks with empty files)")
	quiesceFail := flag.String("quiesce-fail", "", "comma-separated VM names whose quiesced snapshots fail with ApplicationQuiesceFault")
	freePercent := flag.Float64("datastore-free-percent", -1, "datastores report this percentage of their capacity as free (negative: what statfs says)")
	cbtPage := flag.Int64("cbt-page-mib", 16, "disk span in MiB one QueryChangedDiskAreas answer covers")
	removeFail := flag.Int64("snapshot-remove-fail", 0, "the first N snapshot removals fail with FileLocked")
	flag.Parse()

	simulator.AcuraPeer.DiskMiB = *diskMiB
	simulator.AcuraPeer.QuiesceFail = map[string]bool{}
	for _, name := range strings.Split(*quiesceFail, ",") {
		if name = strings.TrimSpace(name); name != "" {
			simulator.AcuraPeer.QuiesceFail[name] = true
		}
	}
	simulator.AcuraPeer.DatastoreFreePercent = *freePercent
	if *cbtPage < 1 {
		log.Fatal("-cbt-page-mib must be at least 1")
	}
	simulator.AcuraPeer.CBTPageMiB = *cbtPage
	simulator.AcuraPeer.RemoveFailures = *removeFail

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
	denyPrivileges(*deny)
	if err := simulator.AcuraPeerInstall(model); err != nil {
		log.Fatal(err)
	}

	model.Service.TLS = new(tls.Config)
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		model.Service.TLS.Certificates = []tls.Certificate{cert}
	}
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
