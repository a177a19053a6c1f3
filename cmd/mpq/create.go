package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/mpq-go/mpq"
)

func init() { commands = append(commands, newCreateCmd) }

func newCreateCmd(e *env) *cobra.Command {
	var (
		capacity, maxMsg, mode string
		o                      mpq.Options
	)
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a queue",
		Long: `Create makes a new, empty queue. Its capacity is rounded up to a power of
two; sizes take units (64KiB, 64MiB, 1GiB or plain bytes). A durable queue
keeps its messages on disk through a crash: its --dir must be on a disk,
not tmpfs.`,
		Example: `  mpq create jobs
  mpq create jobs --capacity 64MiB --max-message 1MiB --mode 0660
  mpq create orders --dir /var/lib/app/queues --durable
  mpq create work --max-deliveries 5 --dead-letter work.dead`,
		Args: exactArgs(1, "a queue name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if isURL(name) {
				return usage("create takes a queue name, not a URL (%s): put creates the queue of a URL, with its parameters (mpq put %s MESSAGE); or create it by name, with --dir for its directory", mpq.RedactURL(name), mpq.RedactURL(name))
			}
			var err error
			if o.Capacity, err = parseSize("--capacity", capacity); err != nil {
				return err
			}
			if o.MaxMessage, err = parseSize("--max-message", maxMsg); err != nil {
				return err
			}
			m, err := strconv.ParseUint(mode, 8, 32)
			if err != nil || m > 0o777 {
				return usage("--mode %q: want octal permission bits such as 0600 or 0660", mode)
			}
			o.Mode = os.FileMode(m)
			o.Dir = e.dir
			q, err := mpq.Create(name, &o)
			if err != nil {
				return e.queueErr(name, err)
			}
			s := q.Stats()
			q.Close()
			kind := ""
			if s.Durable {
				kind = "durable "
			}
			fmt.Fprintf(e.stdout, "created %squeue %s in %s: capacity %s, max message %s\n",
				kind, name, e.queueDir(), humanize.IBytes(uint64(s.Capacity)), humanize.IBytes(uint64(s.MaxMessage)))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&capacity, "capacity", "", "ring size, rounded up to a power of two (default 4MiB)")
	f.StringVar(&maxMsg, "max-message", "", "largest message accepted (default a quarter of the capacity)")
	f.StringVar(&mode, "mode", "0600", "permission bits of the queue file, in octal")
	f.BoolVar(&o.Durable, "durable", false, "keep messages on disk through a crash (--dir must be on a disk)")
	f.IntVar(&o.MaxDeliveries, "max-deliveries", 0, "deliveries of a message before it is dead-lettered (0: no limit)")
	f.StringVar(&o.DeadLetter, "dead-letter", "", "queue that takes messages past --max-deliveries (default: drop them)")
	return c
}

// parseSize reads a size such as 65536, 64KiB or 1MiB; "" is 0, the
// library's default.
func parseSize(flag, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return 0, usage("%s %q: want a size such as 65536, 64KiB or 1MiB", flag, s)
	}
	return int(n), nil
}
