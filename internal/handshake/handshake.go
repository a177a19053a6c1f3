package handshake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sizes of the messages, in bytes.
const (
	HelloSize   = 40
	ReplySize   = 72
	VerdictSize = 40
	FinalSize   = 1
)

// Version is the version of the handshake that hello and reply carry.
const Version = 1

const (
	magic   = "MPQL"
	flagKey = 1 // the sender holds a key
)

// Errors of Unmarshal. Their text is written to sit inside an error of
// package mpq ("the peer speaks another protocol (version 2)"), so it has no
// prefix of its own; each is wrapped with what was read.
var (
	// ErrLength is a message of the wrong length.
	ErrLength = errors.New("wrong length")
	// ErrMagic is a hello or reply that does not start with "MPQL".
	ErrMagic = errors.New("not an mpq handshake")
	// ErrVersion is a hello or reply of another version (wrapped as
	// "version 2").
	ErrVersion = errors.New("version")
	// ErrStatus is a status byte that is none of the four statuses.
	ErrStatus = errors.New("unknown status")
	// ErrFlags is a flags byte with a bit other than the key's.
	ErrFlags = errors.New("unknown flags")
	// ErrReserved is a byte the format keeps zero that is not.
	ErrReserved = errors.New("reserved byte not zero")
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

// DialerMAC is the MAC a dialer holding key sends in its reply.
func DialerMAC(key []byte, listener, dialer Nonce) MAC {
	return mac(key, "mpq dialer v1", listener, dialer)
}

// ListenerMAC is the MAC a listener holding key sends in its verdict.
func ListenerMAC(key []byte, listener, dialer Nonce) MAC {
	return mac(key, "mpq listener v1", dialer, listener)
}

func mac(key []byte, label string, a, b Nonce) MAC {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write(a[:])
	h.Write(b[:])
	var m MAC
	h.Sum(m[:0])
	return m
}

// A Hello is the listener's first message.
type Hello struct {
	Status Status // StatusOK, or StatusRejected if the dialer's user is not allowed
	Key    bool   // the listener has a key
	Nonce  Nonce  // the listener's challenge
}

// Marshal returns the HelloSize bytes of h.
func (h Hello) Marshal() []byte {
	b := make([]byte, HelloSize)
	copy(b, magic)
	b[4], b[5], b[6] = Version, byte(h.Status), flags(h.Key)
	copy(b[8:], h.Nonce[:])
	return b
}

// Unmarshal sets h from a hello read from the peer, or returns an error
// (and leaves h alone) if b is not one.
func (h *Hello) Unmarshal(b []byte) error {
	if err := header(b, HelloSize); err != nil {
		return err
	}
	st, err := status(b[5])
	if err != nil {
		return err
	}
	key, err := keyFlag(b[6])
	if err != nil {
		return err
	}
	if err := zero(b, 7, 8); err != nil {
		return err
	}
	*h = Hello{Status: st, Key: key, Nonce: Nonce(b[8:])}
	return nil
}

// A Reply is the dialer's answer to the hello.
type Reply struct {
	Key   bool  // the dialer has a key
	Nonce Nonce // the dialer's challenge
	MAC   MAC   // DialerMAC, or zero without a key
}

// Marshal returns the ReplySize bytes of r.
func (r Reply) Marshal() []byte {
	b := make([]byte, ReplySize)
	copy(b, magic)
	b[4], b[5] = Version, flags(r.Key)
	copy(b[8:], r.Nonce[:])
	copy(b[8+len(r.Nonce):], r.MAC[:])
	return b
}

// Unmarshal sets r from a reply read from the peer, or returns an error
// (and leaves r alone) if b is not one.
func (r *Reply) Unmarshal(b []byte) error {
	if err := header(b, ReplySize); err != nil {
		return err
	}
	key, err := keyFlag(b[5])
	if err != nil {
		return err
	}
	if err := zero(b, 6, 8); err != nil {
		return err
	}
	*r = Reply{Key: key, Nonce: Nonce(b[8:40]), MAC: MAC(b[40:])}
	return nil
}

// A Verdict is the listener's answer to the reply. With StatusOK it travels
// with the descriptors of the two rings (see the package comment).
type Verdict struct {
	Status Status // StatusOK, StatusAuth or StatusBad
	MAC    MAC    // ListenerMAC, or zero (see the package comment)
}

// Marshal returns the VerdictSize bytes of v.
func (v Verdict) Marshal() []byte {
	b := make([]byte, VerdictSize)
	b[0] = byte(v.Status)
	copy(b[8:], v.MAC[:])
	return b
}

// Unmarshal sets v from a verdict read from the peer, or returns an error
// (and leaves v alone) if b is not one.
func (v *Verdict) Unmarshal(b []byte) error {
	if len(b) != VerdictSize {
		return lengthError(b, VerdictSize)
	}
	st, err := status(b[0])
	if err != nil {
		return err
	}
	if err := zero(b, 1, 8); err != nil {
		return err
	}
	*v = Verdict{Status: st, MAC: MAC(b[8:])}
	return nil
}

// A Final is the dialer's last word: StatusOK once it opened the rings,
// StatusAuth if the listener's MAC was wrong, StatusBad otherwise.
type Final struct {
	Status Status
}

// Marshal returns the FinalSize bytes of f.
func (f Final) Marshal() []byte { return []byte{byte(f.Status)} }

// Unmarshal sets f from a final message read from the peer, or returns an
// error (and leaves f alone) if b is not one.
func (f *Final) Unmarshal(b []byte) error {
	if len(b) != FinalSize {
		return lengthError(b, FinalSize)
	}
	st, err := status(b[0])
	if err != nil {
		return err
	}
	f.Status = st
	return nil
}

// header checks the length of a hello or reply, its magic and its version.
func header(b []byte, size int) error {
	switch {
	case len(b) != size:
		return lengthError(b, size)
	case string(b[:len(magic)]) != magic:
		return ErrMagic
	case b[4] != Version:
		return fmt.Errorf("%w %d", ErrVersion, b[4])
	}
	return nil
}

func lengthError(b []byte, size int) error {
	return fmt.Errorf("%w: %d bytes, not %d", ErrLength, len(b), size)
}

func status(c byte) (Status, error) {
	if s := Status(c); s <= StatusBad {
		return s, nil
	}
	return 0, fmt.Errorf("%w %d", ErrStatus, c)
}

func flags(key bool) byte {
	if key {
		return flagKey
	}
	return 0
}

func keyFlag(c byte) (bool, error) {
	if c&^flagKey != 0 {
		return false, fmt.Errorf("%w %#x", ErrFlags, c)
	}
	return c == flagKey, nil
}

// zero checks that b[from:to] is all zeros.
func zero(b []byte, from, to int) error {
	for i := from; i < to; i++ {
		if b[i] != 0 {
			return fmt.Errorf("%w (byte %d is %#x)", ErrReserved, i, b[i])
		}
	}
	return nil
}
