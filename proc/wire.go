package proc

import (
	"bytes"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/mpq-go/mpq/internal/cborx"
)

// What passes between parent and child, besides the descriptors themselves.
//
// The child is told that it is one by envChild, which holds a random token.
// Descriptor 3 is a file (a memfd on Linux) holding the payload, CBOR
// encoded, which repeats the token; descriptor 4 is the write end of the
// result pipe. Argument descriptors follow from 5.
const (
	envChild  = "MPQ_PROC_CHILD"
	payloadFD = 3
	resultFD  = 4
	firstArg  = 5

	// maxPayload bounds what the child reads from the payload file.
	maxPayload = 1 << 31
	// maxReport bounds what the parent keeps of the result pipe (it reads
	// and drops the rest, so that the child never blocks writing).
	maxReport = 1 << 20
)

// resultMagic starts a result written by the child. Whatever else the pipe
// holds is the runtime's crash report, which starts with text.
var resultMagic = []byte("\xffmpq-proc-result\x00")

// payload tells the child what to run.
type payload struct {
	Token  string
	Func   string
	Parent int   // the parent's pid, or 0 for a detached child
	Grace  int64 // nanoseconds; negative for no limit
	Args   []wireArg
}

// Kinds of arguments.
const (
	argValue uint8 = iota // Value holds the CBOR encoding
	argNil                // the zero value of the parameter type
	argQueue              // FDs[0] is the queue file
	argConn               // FDs holds socket, receive ring, send ring (-1: none)
	argFile               // FDs[0] is the file, Name its name
)

type wireArg struct {
	Kind  uint8
	FDs   []int           `cbor:",omitempty"`
	Name  string          `cbor:",omitempty"`
	Value cbor.RawMessage `cbor:",omitempty"`
}

// Outcomes a child reports.
const (
	outOK uint8 = iota
	outError
	outPanic
	outSetup  // could not run the function
	outKilled // made to exit after its grace period or a second signal
)

// result is what the child reports about its function.
type result struct {
	Outcome uint8
	Message string `cbor:",omitempty"`
	Stack   string `cbor:",omitempty"`
	Is      []int  `cbor:",omitempty"`
}

// Encoding of arguments and of the messages above. Arguments come from the
// parent, which is the same program and checked that each one decodes, so
// they are decoded as trusted.
var (
	encMode = cborx.Enc
	decMode = cborx.Trusted
)

// parseReport splits what the child wrote to the result pipe into its
// result (nil if it wrote none) and the runtime's crash report.
func parseReport(data []byte) (*result, string) {
	var res *result
	if rest, ok := bytes.CutPrefix(data, resultMagic); ok {
		var r result
		var err error
		if data, err = decMode.UnmarshalFirst(rest, &r); err == nil {
			res = &r
		} else {
			data = nil
		}
	}
	return res, string(data)
}

// crashReport fills e from the runtime's report of a fatal panic or error:
// "panic: boom\n\ngoroutine 1 [running]:\n...". The runtime writes the
// line of a fatal error ("fatal error: concurrent map writes") to standard
// error only: the report then starts with the stacks.
func crashReport(e *ExitError, report string) {
	report = strings.TrimLeft(report, "\n")
	if strings.HasPrefix(report, "goroutine ") {
		e.Message = "fatal error (its message is on the child's standard error)"
		e.Stack = strings.TrimRight(report, "\n")
		return
	}
	msg, stack, _ := strings.Cut(report, "\n\ngoroutine ")
	if stack != "" {
		stack = "goroutine " + stack
	}
	if m, ok := strings.CutPrefix(msg, "panic: "); ok {
		e.Panic = true
		// A panic while panicking adds "\n\tpanic: ..." lines; a value
		// recovered and panicked again is marked so. Keep the first line.
		m, _, _ = strings.Cut(m, "\n")
		msg, _, _ = strings.Cut(m, " [recovered")
	} else {
		msg = strings.TrimSpace(msg)
	}
	e.Message, e.Stack = msg, strings.TrimRight(stack, "\n")
}
