// referrers-registry serves go-containerregistry's registry (pkg/registry) with its OCI 1.1
// referrers API switched on, in memory, on 127.0.0.1: the registry with the referrers API that
// kantup's tests push to (docker-registry 2.8 and distribution v3 have none, and zot is not
// served by the Go module proxy this project reaches). It prints "listening on PORT" once it
// accepts connections.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any free port)")
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening on %d\n", listener.Addr().(*net.TCPAddr).Port)
	server := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: registry.New(
			registry.WithReferrersSupport(true),
			registry.Logger(log.New(os.Stderr, "", log.LstdFlags)),
		),
	}
	log.Fatal(server.Serve(listener))
}
