package handshake_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mpq-go/mpq/internal/handshake"
)

// The nonces and MACs of the pinned messages. The MACs were computed by the
// mac function of listen.go before the format moved here, with the key
// "secret" and these nonces.
const (
	nonceLHex = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
	nonceDHex = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	macDHex   = "a72a73518c9d9290a5e023783014ddd549038bc835b4ef95fc42ed7d101ecc4a"
	macLHex   = "3b69dfefcbca42a30fa35ff7b9b900d357f1c24d1be40cdd870b50fac1665e3e"
	zero32Hex = "0000000000000000000000000000000000000000000000000000000000000000"
)

var key = []byte("secret")

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nonce(t testing.TB, s string) handshake.Nonce { return handshake.Nonce(unhex(t, s)) }
func mac(t testing.TB, s string) handshake.MAC     { return handshake.MAC(unhex(t, s)) }

// A message is what every message type is, through a pointer.
type message interface {
	Marshal() []byte
	Unmarshal([]byte) error
}

// pinned are the messages with their bytes as listen.go wrote them before
// the format moved here: the bytes on the wire must not change.
func pinned(t testing.TB) []struct {
	name string
	msg  message
	wire string // hex; spaces between fields
} {
	return []struct {
		name string
		msg  message
		wire string
	}{
		{"hello ok, key", &handshake.Hello{Key: true, Nonce: nonce(t, nonceLHex)},
			"4d50514c 01 00 01 00 " + nonceLHex},
		{"hello ok, no key", &handshake.Hello{Nonce: nonce(t, nonceLHex)},
			"4d50514c 01 00 00 00 " + nonceLHex},
		{"hello rejected", &handshake.Hello{Status: handshake.StatusRejected, Key: true, Nonce: nonce(t, nonceLHex)},
			"4d50514c 01 01 01 00 " + nonceLHex},
		{"reply, key", &handshake.Reply{Key: true, Nonce: nonce(t, nonceDHex), MAC: mac(t, macDHex)},
			"4d50514c 01 01 0000 " + nonceDHex + macDHex},
		{"reply, no key", &handshake.Reply{Nonce: nonce(t, nonceDHex)},
			"4d50514c 01 00 0000 " + nonceDHex + zero32Hex},
		{"verdict ok, key", &handshake.Verdict{MAC: mac(t, macLHex)},
			"00 00000000000000 " + macLHex},
		{"verdict ok, no key", &handshake.Verdict{},
			"00 00000000000000 " + zero32Hex},
		{"verdict auth", &handshake.Verdict{Status: handshake.StatusAuth},
			"02 00000000000000 " + zero32Hex},
		{"verdict bad, key checked", &handshake.Verdict{Status: handshake.StatusBad, MAC: mac(t, macLHex)},
			"03 00000000000000 " + macLHex},
		{"final ok", &handshake.Final{}, "00"},
		{"final auth", &handshake.Final{Status: handshake.StatusAuth}, "02"},
		{"final bad", &handshake.Final{Status: handshake.StatusBad}, "03"},
	}
}

// empty returns a new zero message of the type of m.
func empty(m message) message {
	switch m.(type) {
	case *handshake.Hello:
		return new(handshake.Hello)
	case *handshake.Reply:
		return new(handshake.Reply)
	case *handshake.Verdict:
		return new(handshake.Verdict)
	}
	return new(handshake.Final)
}

func TestWireFormat(t *testing.T) {
	for _, tc := range pinned(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.wire)
			if got := tc.msg.Marshal(); !bytes.Equal(got, want) {
				t.Errorf("Marshal: got %x; want %x", got, want)
			}
			got := empty(tc.msg)
			if err := got.Unmarshal(want); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if g, w := got.Marshal(), tc.msg.Marshal(); !bytes.Equal(g, w) {
				t.Errorf("Unmarshal: got %+v; want %+v", got, tc.msg)
			}
		})
	}
	sizes := map[string]int{"hello": handshake.HelloSize, "reply": handshake.ReplySize, "verdict": handshake.VerdictSize, "final": handshake.FinalSize}
	for _, tc := range pinned(t) {
		if want := sizes[strings.TrimRight(strings.Fields(tc.name)[0], ",")]; len(tc.msg.Marshal()) != want {
			t.Errorf("%s: %d bytes; want %d", tc.name, len(tc.msg.Marshal()), want)
		}
	}
}

func TestMACs(t *testing.T) {
	l, d := nonce(t, nonceLHex), nonce(t, nonceDHex)
	if got := handshake.DialerMAC(key, l, d); got != mac(t, macDHex) {
		t.Errorf("DialerMAC: got %x; want %s", got, macDHex)
	}
	if got := handshake.ListenerMAC(key, l, d); got != mac(t, macLHex) {
		t.Errorf("ListenerMAC: got %x; want %s", got, macLHex)
	}
	if m := handshake.DialerMAC(key, l, d); !m.Equal(mac(t, macDHex)) || m.Equal(handshake.MAC{}) {
		t.Errorf("MAC.Equal does not tell MACs apart")
	}
	if handshake.NewNonce() == handshake.NewNonce() {
		t.Errorf("NewNonce returned the same nonce twice")
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	hello := "4d50514c 01 00 01 00 " + nonceLHex
	reply := "4d50514c 01 01 0000 " + nonceDHex + macDHex
	verdict := "00 00000000000000 " + macLHex
	for _, tc := range []struct {
		name string
		msg  message
		wire string
		want error
		text string // the error's text
	}{
		{"hello short", &handshake.Hello{}, hello[:len(hello)-2], handshake.ErrLength, "wrong length: 39 bytes, not 40"},
		{"hello long", &handshake.Hello{}, hello + "00", handshake.ErrLength, "wrong length: 41 bytes, not 40"},
		{"hello magic", &handshake.Hello{}, "4d50514d" + hello[8:], handshake.ErrMagic, "not an mpq handshake"},
		{"hello version", &handshake.Hello{}, "4d50514c 02" + hello[11:], handshake.ErrVersion, "version 2"},
		{"hello status", &handshake.Hello{}, "4d50514c 01 04" + hello[14:], handshake.ErrStatus, "unknown status 4"},
		{"hello flags", &handshake.Hello{}, "4d50514c 01 00 03" + hello[17:], handshake.ErrFlags, "unknown flags 0x3"},
		{"hello reserved", &handshake.Hello{}, "4d50514c 01 00 01 80" + hello[20:], handshake.ErrReserved, "reserved byte not zero (byte 7 is 0x80)"},
		{"reply empty", &handshake.Reply{}, "", handshake.ErrLength, "wrong length: 0 bytes, not 72"},
		{"reply magic", &handshake.Reply{}, "00000000" + reply[8:], handshake.ErrMagic, "not an mpq handshake"},
		{"reply version", &handshake.Reply{}, "4d50514c 00" + reply[11:], handshake.ErrVersion, "version 0"},
		{"reply flags", &handshake.Reply{}, "4d50514c 01 81" + reply[14:], handshake.ErrFlags, "unknown flags 0x81"},
		{"reply reserved", &handshake.Reply{}, "4d50514c 01 01 0001" + reply[19:], handshake.ErrReserved, "reserved byte not zero (byte 7 is 0x1)"},
		{"verdict short", &handshake.Verdict{}, "00", handshake.ErrLength, "wrong length: 1 bytes, not 40"},
		{"verdict status", &handshake.Verdict{}, "ff" + verdict[2:], handshake.ErrStatus, "unknown status 255"},
		{"verdict reserved", &handshake.Verdict{}, "00 01" + verdict[5:], handshake.ErrReserved, "reserved byte not zero (byte 1 is 0x1)"},
		{"final long", &handshake.Final{}, "0000", handshake.ErrLength, "wrong length: 2 bytes, not 1"},
		{"final status", &handshake.Final{}, "04", handshake.ErrStatus, "unknown status 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.msg.Marshal()
			err := tc.msg.Unmarshal(unhex(t, tc.wire))
			if !errors.Is(err, tc.want) || err.Error() != tc.text {
				t.Errorf("Unmarshal: got %v; want %v (%q)", err, tc.want, tc.text)
			}
			if after := tc.msg.Marshal(); !bytes.Equal(before, after) {
				t.Errorf("a refused Unmarshal changed the message: %x, then %x", before, after)
			}
		})
	}
}
