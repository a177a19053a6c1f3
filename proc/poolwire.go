package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// What passes between a pool and its workers.
//
// A task message (tasks queue, pool to workers) is a chunk: a header, then
// the chunk's inputs (see sliceCodec).
//
//	[0:8]   chunk ID
//	[8:16]  call ID
//	[16:20] number of tasks
//
// A report (results queue, workers to pool) is a header, then for
// reportResults the results (see encodeResults).
//
//	[0]     kind: report*
//	[4:8]   the worker's slot
//	[8:16]  chunk ID
//	[16:20] first task of the chunk the report covers
//	[20:24] number of tasks it covers
//	[24:28] the worker's pid
const (
	chunkHeader  = 20
	reportHeader = 28
)

// Kinds of report.
const (
	reportResults  = 1 // results of tasks first..first+n-1 of the chunk
	reportReturned = 2 // the chunk was delivered again: its holder died
	reportReady    = 3 // the worker ran Init and waits for tasks
	reportSkipped  = 4 // the chunk's call was abandoned: its tasks were not run (or not all)
)

// wireFail is a task that returned an error or panicked.
type wireFail struct {
	Pos     uint32 // in the chunk
	Message string
	Panic   bool   `cbor:",omitempty"`
	Stack   string `cbor:",omitempty"`
	Is      []int  `cbor:",omitempty"`
}

var errShortMessage = errors.New("message too short")

// chunkHead reads a task message's header.
func chunkHead(b []byte) (chunk, call uint64, n int, err error) {
	if len(b) < chunkHeader {
		return 0, 0, 0, fmt.Errorf("task message of %d bytes: %w", len(b), errShortMessage)
	}
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), int(binary.LittleEndian.Uint32(b[16:])), nil
}

// putChunkHead writes a task message's header into b.
func putChunkHead(b []byte, chunk, call uint64, n int) {
	binary.LittleEndian.PutUint64(b, chunk)
	binary.LittleEndian.PutUint64(b[8:], call)
	binary.LittleEndian.PutUint32(b[16:], uint32(n))
}

// A reportHead is a report's header.
type reportHead struct {
	kind  uint8
	slot  int
	chunk uint64
	first int
	n     int
	pid   int
}

// readReportHead reads a report's header.
func readReportHead(b []byte) (reportHead, error) {
	if len(b) < reportHeader {
		return reportHead{}, fmt.Errorf("report of %d bytes: %w", len(b), errShortMessage)
	}
	return reportHead{
		kind: b[0], slot: int(binary.LittleEndian.Uint32(b[4:])), chunk: binary.LittleEndian.Uint64(b[8:]),
		first: int(binary.LittleEndian.Uint32(b[16:])), n: int(binary.LittleEndian.Uint32(b[20:])),
		pid: int(binary.LittleEndian.Uint32(b[24:])),
	}, nil
}

// appendReportHead appends a report's header to b.
func appendReportHead(b []byte, h reportHead) []byte {
	b = append(b, h.kind, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.slot))
	b = binary.LittleEndian.AppendUint64(b, h.chunk)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.first))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.n))
	return binary.LittleEndian.AppendUint32(b, uint32(h.pid))
}
