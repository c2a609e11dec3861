// kstatus-oracle prints what kstatus (sigs.k8s.io/cli-utils pkg/kstatus/status) computes for
// each object it reads, so kantup's readiness module can be checked against it.
//
// Input (stdin): a JSON array of Kubernetes objects, as the API server returns them.
// Output (stdout): a JSON array, one entry per object, in order:
// {"status": "Current", "message": "..."} or {"error": "..."} when kstatus returns an error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read stdin: %v", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(input, &raws); err != nil {
		fail("stdin is not a JSON array: %v", err)
	}
	verdicts := make([]verdict, 0, len(raws))
	for i, raw := range raws {
		// The same decoding client-go applies to API responses (integers stay int64).
		obj, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		if err != nil {
			fail("object %d: %v", i, err)
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			fail("object %d: not a single object", i)
		}
		result, err := status.Compute(u)
		if err != nil {
			verdicts = append(verdicts, verdict{Error: err.Error()})
			continue
		}
		verdicts = append(verdicts, verdict{Status: result.Status.String(), Message: result.Message})
	}
	out, err := json.MarshalIndent(verdicts, "", "  ")
	if err != nil {
		fail("encode: %v", err)
	}
	fmt.Println(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus-oracle: "+format+"\n", args...)
	os.Exit(2)
}
