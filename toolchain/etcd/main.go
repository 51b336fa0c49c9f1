// Command etcd runs a single-member etcd server until it fails or is killed:
//
//	etcd DATA_DIR CLIENT_URL PEER_URL
//
// It prints "ready" on stderr once it serves clients.
package main

import (
	"log"
	"net/url"
	"os"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: etcd DATA_DIR CLIENT_URL PEER_URL")
	}
	cfg := embed.NewConfig()
	cfg.Dir = os.Args[1]
	client, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	peer, err := url.Parse(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	<-server.Server.ReadyNotify()
	log.Print("ready")
	log.Fatal(<-server.Err())
}
