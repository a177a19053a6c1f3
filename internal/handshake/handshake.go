package handshake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the messages, in bytes.
const (
	HelloSize   = 56
	ReplySize   = 88
	VerdictSize = 40
	FinalSize   = 1
)

// Version is the version of the handshake that hello and reply carry. It
// was 1 before the hello and the reply carried [Namespaces] and the MACs a
// [Binding].
const Version = 2

const (
	magic   = "MPQL"
	flagKey = 1 // the sender holds a key
)

// Errors of Unmarshal. Their text is written to sit inside an error of
// package mpq ("the peer speaks another protocol (version 2)"), so it has no
// prefix of its own; each is wrapped with what was read.
var (
	ErrLength   = errors.New("wrong length")           // a message of the wrong length
	ErrMagic    = errors.New("not an mpq handshake")   // a hello or reply without "MPQL"
	ErrVersion  = errors.New("version")                // a hello or reply of another version ("version 2")
	ErrStatus   = errors.New("unknown status")         // none of the four statuses
	ErrFlags    = errors.New("unknown flags")          // a flag bit other than the key's
	ErrReserved = errors.New("reserved byte not zero") // a byte the format keeps zero
)

// A Status is a side's answer: in a hello, a verdict or the final message.
type Status uint8

// The statuses.
const (
	StatusOK       Status = 0
	StatusRejected Status = 1 // the peer's user is not allowed
	StatusAuth     Status = 2 // a key missing or wrong
	StatusBad      Status = 3 // not a handshake of this version, or no rings
)

// A Nonce is a random challenge, one from each side.
type Nonce [32]byte

// NewNonce returns a random nonce.
func NewNonce() Nonce {
	var n Nonce
	rand.Read(n[:])
	return n
}

// A MAC is a side's proof that it holds the key: an HMAC-SHA256 of the
// other side's nonce.
type MAC [sha256.Size]byte

// Equal reports whether m and o are the same, in constant time.
func (m MAC) Equal(o MAC) bool { return hmac.Equal(m[:], o[:]) }

// Namespaces identify the pid and the user namespace of a process: on
// Linux the inode numbers of /proc/self/ns/pid and /proc/self/ns/user. Two
// processes with the same PID see each other's pids as they are; with the
// same User, each other's uids. A side that cannot tell sends a random
// number, which matches nobody's: then nothing of that kind is bound.
type Namespaces struct {
	PID, User uint64
}

// A Binding is what the MACs bind besides the nonces: the two processes and
// the socket file between them, each as the side that computes the MAC sees
// them (its own pid and uid, the peer's from the socket's credentials).
// The pids count only if the two sides are in one pid namespace, the uids
// only if in one user namespace (see [Binding.bytes]); a relay between the
// two makes each side see the relay's pid where the other put its own, so
// the MACs differ and the handshake fails.
type Binding struct {
	ListenerNS, DialerNS   Namespaces
	ListenerPID, DialerPID int
	ListenerUID, DialerUID int
	SocketDev, SocketIno   uint64 // the socket file: the one the listener bound, the one the dialer reached
}

// bytes is the binding as the MACs take it: the four namespace numbers, the
// socket's device and inode, the two pids (zeros unless both sides are in
// one pid namespace) and the two uids (zeros unless in one user
// namespace), in that order, each 8 bytes big-endian.
func (b Binding) bytes() []byte {
	var pids, uids [2]int
	if b.ListenerNS.PID == b.DialerNS.PID {
		pids = [2]int{b.ListenerPID, b.DialerPID}
	}
	if b.ListenerNS.User == b.DialerNS.User {
		uids = [2]int{b.ListenerUID, b.DialerUID}
	}
	var out []byte
	for _, v := range []uint64{b.ListenerNS.PID, b.ListenerNS.User, b.DialerNS.PID, b.DialerNS.User,
		b.SocketDev, b.SocketIno, uint64(pids[0]), uint64(pids[1]), uint64(uids[0]), uint64(uids[1])} {
		out = binary.BigEndian.AppendUint64(out, v)
	}
	return out
}

// DialerMAC is the MAC a dialer holding key sends in its reply.
func DialerMAC(key []byte, listener, dialer Nonce, b Binding) MAC {
	return mac(key, "mpq dialer v2", listener, dialer, b)
}

// ListenerMAC is the MAC a listener holding key sends in its verdict.
func ListenerMAC(key []byte, listener, dialer Nonce, b Binding) MAC {
	return mac(key, "mpq listener v2", dialer, listener, b)
}

func mac(key []byte, label string, a, b Nonce, bind Binding) MAC {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write(a[:])
	h.Write(b[:])
	h.Write(bind.bytes())
	var m MAC
	h.Sum(m[:0])
	return m
}

// A Hello is the listener's first message.
type Hello struct {
	Status Status     // StatusOK, or StatusRejected if the dialer's user is not allowed
	Key    bool       // the listener has a key
	Nonce  Nonce      // the listener's challenge
	NS     Namespaces // the listener's
}

// layout lists the fields of a hello, in order.
func (h *Hello) layout() []field {
	return []field{header(), status(&h.Status), keyFlag(&h.Key), reserved(1), raw(h.Nonce[:]), namespaces(&h.NS)}
}

// Marshal returns the HelloSize bytes of h.
func (h Hello) Marshal() []byte { return marshal(h.layout()) }

// Unmarshal sets h from a hello read from the peer, or returns an error
// (and leaves h alone) if b is not one.
func (h *Hello) Unmarshal(b []byte) error { return unmarshal(h, b) }

// A Reply is the dialer's answer to the hello.
type Reply struct {
	Key   bool       // the dialer has a key
	Nonce Nonce      // the dialer's challenge
	NS    Namespaces // the dialer's
	MAC   MAC        // DialerMAC, or zero without a key
}

// layout lists the fields of a reply, in order.
func (r *Reply) layout() []field {
	return []field{header(), keyFlag(&r.Key), reserved(2), raw(r.Nonce[:]), namespaces(&r.NS), raw(r.MAC[:])}
}

// Marshal returns the ReplySize bytes of r.
func (r Reply) Marshal() []byte { return marshal(r.layout()) }

// Unmarshal sets r from a reply read from the peer, or returns an error
// (and leaves r alone) if b is not one.
func (r *Reply) Unmarshal(b []byte) error { return unmarshal(r, b) }

// A Verdict is the listener's answer to the reply. With StatusOK it travels
// with the descriptors of the two rings (see the package comment).
type Verdict struct {
	Status Status // StatusOK, StatusAuth or StatusBad
	MAC    MAC    // ListenerMAC, or zero (see the package comment)
}

// layout lists the fields of a verdict, in order.
func (v *Verdict) layout() []field {
	return []field{status(&v.Status), reserved(7), raw(v.MAC[:])}
}

// Marshal returns the VerdictSize bytes of v.
func (v Verdict) Marshal() []byte { return marshal(v.layout()) }

// Unmarshal sets v from a verdict read from the peer, or returns an error
// (and leaves v alone) if b is not one.
func (v *Verdict) Unmarshal(b []byte) error { return unmarshal(v, b) }

// A Final is the dialer's last word: StatusOK once it opened the rings,
// StatusAuth if the listener's MAC was wrong, StatusBad otherwise.
type Final struct {
	Status Status
}

// layout lists the fields of a final message, in order.
func (f *Final) layout() []field { return []field{status(&f.Status)} }

// Marshal returns the FinalSize bytes of f.
func (f Final) Marshal() []byte { return marshal(f.layout()) }

// Unmarshal sets f from a final message read from the peer, or returns an
// error (and leaves f alone) if b is not one.
func (f *Final) Unmarshal(b []byte) error { return unmarshal(f, b) }

// A field is one field of a message's layout, bound to where its value is
// kept: put writes the value to the field's n bytes, get checks those bytes
// (at is where they are in the message) and sets the value.
type field struct {
	n   int
	put func(b []byte)
	get func(b []byte, at int) error
}

// A message is a pointer to one of the message types, which lists its
// fields in order.
type message[T any] interface {
	*T
	layout() []field
}

// marshal writes the fields in order.
func marshal(fields []field) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, make([]byte, f.n)...)
		f.put(b[len(b)-f.n:])
	}
	return b
}

// unmarshal reads the fields of b into a new message and stores it in dst
// if they all check out; else it returns the first error.
func unmarshal[T any, P message[T]](dst P, b []byte) error {
	var v T
	fields := P(&v).layout()
	size := 0
	for _, f := range fields {
		size += f.n
	}
	if len(b) != size {
		return fmt.Errorf("%w: %d bytes, not %d", ErrLength, len(b), size)
	}
	at := 0
	for _, f := range fields {
		if err := f.get(b[at:at+f.n], at); err != nil {
			return err
		}
		at += f.n
	}
	*dst = v
	return nil
}

// header is the magic and the version that start a hello and a reply.
func header() field {
	return field{n: len(magic) + 1,
		put: func(b []byte) { b[copy(b, magic)] = Version },
		get: func(b []byte, _ int) error {
			if string(b[:len(magic)]) != magic {
				return ErrMagic
			}
			if v := b[len(magic)]; v != Version {
				return fmt.Errorf("%w %d", ErrVersion, v)
			}
			return nil
		}}
}

// status is a status byte.
func status(s *Status) field {
	return field{n: 1,
		put: func(b []byte) { b[0] = byte(*s) },
		get: func(b []byte, _ int) error {
			if Status(b[0]) > StatusBad {
				return fmt.Errorf("%w %d", ErrStatus, b[0])
			}
			*s = Status(b[0])
			return nil
		}}
}

// keyFlag is the flags byte, whose one bit says the sender has a key.
func keyFlag(key *bool) field {
	return field{n: 1,
		put: func(b []byte) {
			if *key {
				b[0] = flagKey
			}
		},
		get: func(b []byte, _ int) error {
			if b[0]&^flagKey != 0 {
				return fmt.Errorf("%w %#x", ErrFlags, b[0])
			}
			*key = b[0] == flagKey
			return nil
		}}
}

// reserved is n bytes kept zero.
func reserved(n int) field {
	return field{n: n,
		put: func([]byte) {},
		get: func(b []byte, at int) error {
			for i, c := range b {
				if c != 0 {
					return fmt.Errorf("%w (byte %d is %#x)", ErrReserved, at+i, c)
				}
			}
			return nil
		}}
}

// namespaces is the pid then the user namespace number, 8 bytes each,
// big-endian.
func namespaces(ns *Namespaces) field {
	return field{n: 16,
		put: func(b []byte) {
			binary.BigEndian.PutUint64(b, ns.PID)
			binary.BigEndian.PutUint64(b[8:], ns.User)
		},
		get: func(b []byte, _ int) error {
			ns.PID, ns.User = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
			return nil
		}}
}

// raw is a nonce or a MAC, taken as it is.
func raw(p []byte) field {
	return field{n: len(p),
		put: func(b []byte) { copy(b, p) },
		get: func(b []byte, _ int) error { copy(p, b); return nil }}
}
