package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mpq-go/mpq/natsq"
)

// natsJSON is how stat --json describes a queue on NATS: natsq.Stats with
// names for scripts. Len is the depth, as for a queue in shared memory.
type natsJSON struct {
	Name          string    `json:"name"`
	URL           string    `json:"url"`
	Server        string    `json:"server"`
	Subject       string    `json:"subject"`
	Created       time.Time `json:"created"`
	Len           uint64    `json:"len"`
	Messages      uint64    `json:"messages"`
	Bytes         uint64    `json:"bytes"`
	Pending       uint64    `json:"pending"`
	AckPending    int       `json:"ack_pending"`
	Redelivered   int       `json:"redelivered"`
	Waiting       int       `json:"waiting"`
	Sealed        bool      `json:"sealed"`
	Storage       string    `json:"storage"`
	Replicas      int       `json:"replicas"`
	MaxMsgs       int64     `json:"max_msgs"`
	MaxBytes      int64     `json:"max_bytes"`
	MaxMessage    int32     `json:"max_message_size"`
	AckWait       float64   `json:"ack_wait_seconds"`
	MaxDeliveries int       `json:"max_deliveries"`
}

// statNATS prints what the server says of the queue of a nats:// URL.
func statNATS(ctx context.Context, e *env, r *queueRef, asJSON bool) error {
	mq, err := r.open(ctx, false, map[string]string{"prefetch": "1"})
	if err != nil {
		return err
	}
	defer mq.Close()
	q, ok := mq.(*natsq.Queue)
	if !ok {
		return fail(exitFailure, "queue %s: not a NATS queue but a %T", r, mq)
	}
	s, err := q.Stats(ctx)
	if err != nil {
		return r.err(err)
	}
	if asJSON {
		return writeJSON(e.stdout, natsJSON{
			Name: s.Name, URL: r.String(), Server: r.server, Subject: s.Subject, Created: s.Created,
			Len: s.Pending, Messages: s.Messages, Bytes: s.Bytes, Pending: s.Pending,
			AckPending: s.AckPending, Redelivered: s.Redelivered, Waiting: s.Waiting, Sealed: s.Sealed,
			Storage: storage(s), Replicas: s.Replicas, MaxMsgs: s.MaxMsgs, MaxBytes: s.MaxBytes,
			MaxMessage: s.MaxMessage, AckWait: s.AckWait.Seconds(), MaxDeliveries: s.MaxDeliveries,
		})
	}
	return printNATSStat(e.stdout, r.server, s)
}

func storage(s natsq.Stats) string {
	if s.Memory {
		return "memory"
	}
	return "file"
}

// printNATSStat prints s in the style of printStat.
func printNATSStat(w io.Writer, server string, s natsq.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	limit := func(v int64, f func(int64) string) string {
		if v < 0 {
			return "no limit"
		}
		return f(v)
	}
	count := func(v int64) string { return fmt.Sprint(v) }
	bytes := func(v int64) string { return humanize.IBytes(uint64(v)) }
	var flags []string
	if s.Sealed {
		flags = append(flags, "sealed")
	}
	if len(flags) == 0 {
		flags = append(flags, "-")
	}
	fmt.Fprintf(tw, "queue\t%s\n", s.Name)
	fmt.Fprintf(tw, "server\t%s, stream %s, subject %s\n", server, s.Name, s.Subject)
	fmt.Fprintf(tw, "created\t%s (%s)\n", s.Created.Local().Format(time.DateTime), humanize.Time(s.Created))
	fmt.Fprintf(tw, "depth\t%d messages\n", s.Pending)
	fmt.Fprintf(tw, "stored\t%s, %s of %s", plural(int(s.Messages), "message"), humanize.IBytes(s.Bytes), limit(s.MaxBytes, bytes))
	if s.MaxBytes > 0 {
		fmt.Fprintf(tw, " (%.0f%%)", 100*float64(s.Bytes)/float64(s.MaxBytes))
	}
	fmt.Fprintf(tw, "\n")
	fmt.Fprintf(tw, "limits\tmax messages %s, max message %s\n", limit(s.MaxMsgs, count), limit(int64(s.MaxMessage), bytes))
	fmt.Fprintf(tw, "deliveries\tpending %d, ack pending %d, redelivered %d, waiting consumers %d\n", s.Pending, s.AckPending, s.Redelivered, s.Waiting)
	maxDel := "no limit on deliveries"
	if s.MaxDeliveries > 0 {
		maxDel = fmt.Sprintf("after %d deliveries a message is dead-lettered or dropped", s.MaxDeliveries)
	}
	fmt.Fprintf(tw, "lease\tack wait %v; %s\n", s.AckWait, maxDel)
	fmt.Fprintf(tw, "storage\t%s, %s\n", storage(s), plural(s.Replicas, "replica"))
	fmt.Fprintf(tw, "flags\t%s\n", strings.Join(flags, ", "))
	return tw.Flush()
}
