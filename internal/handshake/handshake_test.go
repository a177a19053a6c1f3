package handshake_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mpq-go/mpq/internal/handshake"
)

// The nonces, namespaces and MACs of the pinned messages. The MACs were
// computed outside Go (Python's hmac module, from the format the package
// comment documents) with the key "secret", these nonces and [binding]:
// macD and macL with both sides in one pid namespace, macDOther and
// macLOther with the dialer in another one.
const (
	nonceLHex   = "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
	nonceDHex   = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	nsHex       = "00000000effffffc 00000000effffffd"
	macDHex     = "be159599f3e6e921c88e1b9b3b3b2837b49eb5371e92ee3b83a1c1899a830f92"
	macLHex     = "996fdfd07bb5159be43f255fdbbed5f33201c086b7f9d50ac8b6d4b22460f471"
	macDOther   = "97a064327f855f2c373f1f62d117ca25d75ba1d87839037faff0c2241826553d"
	macLOther   = "538693c85dcba5dfeab6fe2ec996476ea7e323c6d72556d0d2e90c7f3973765e"
	zero32Hex   = "0000000000000000000000000000000000000000000000000000000000000000"
	zero16Hex   = "00000000000000000000000000000000"
	otherPIDNS  = 4026532000
	sharedPIDNS = 0xeffffffc
	sharedUser  = 0xeffffffd
)

var ns = handshake.Namespaces{PID: sharedPIDNS, User: sharedUser}

// binding is the binding of the pinned MACs: listener pid 100 uid 0,
// dialer pid 200 uid 65534, socket device 0x2a inode 0x1234, both sides in
// the namespaces ns.
func binding() handshake.Binding {
	return handshake.Binding{ListenerNS: ns, DialerNS: ns, ListenerPID: 100, DialerPID: 200,
		ListenerUID: 0, DialerUID: 65534, SocketDev: 0x2a, SocketIno: 0x1234}
}

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

// pinned are the messages with their bytes as the package comment
// documents them: the bytes on the wire of version 2 must not change.
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
		{"hello ok, key", &handshake.Hello{Key: true, Nonce: nonce(t, nonceLHex), NS: ns},
			"4d50514c 02 00 01 00 " + nonceLHex + nsHex},
		{"hello ok, no key", &handshake.Hello{Nonce: nonce(t, nonceLHex), NS: ns},
			"4d50514c 02 00 00 00 " + nonceLHex + nsHex},
		{"hello rejected", &handshake.Hello{Status: handshake.StatusRejected, Key: true, Nonce: nonce(t, nonceLHex)},
			"4d50514c 02 01 01 00 " + nonceLHex + zero16Hex},
		{"reply, key", &handshake.Reply{Key: true, Nonce: nonce(t, nonceDHex), NS: ns, MAC: mac(t, macDHex)},
			"4d50514c 02 01 0000 " + nonceDHex + nsHex + macDHex},
		{"reply, no key", &handshake.Reply{Nonce: nonce(t, nonceDHex), NS: ns},
			"4d50514c 02 00 0000 " + nonceDHex + nsHex + zero32Hex},
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
	b := binding()
	if got := handshake.DialerMAC(key, l, d, b); got != mac(t, macDHex) {
		t.Errorf("DialerMAC: got %x; want %s", got, macDHex)
	}
	if got := handshake.ListenerMAC(key, l, d, b); got != mac(t, macLHex) {
		t.Errorf("ListenerMAC: got %x; want %s", got, macLHex)
	}
	// A dialer in another pid namespace: the pids are not bound, whatever
	// each side saw of the other's.
	other := b
	other.DialerNS.PID = otherPIDNS
	for _, pids := range [][2]int{{100, 200}, {0, 200}, {1, 2}} {
		other.ListenerPID, other.DialerPID = pids[0], pids[1]
		if got := handshake.DialerMAC(key, l, d, other); got != mac(t, macDOther) {
			t.Errorf("DialerMAC, pid namespaces differ, pids %v: got %x; want %s", pids, got, macDOther)
		}
		if got := handshake.ListenerMAC(key, l, d, other); got != mac(t, macLOther) {
			t.Errorf("ListenerMAC, pid namespaces differ, pids %v: got %x; want %s", pids, got, macLOther)
		}
	}
	if m := handshake.DialerMAC(key, l, d, b); !m.Equal(mac(t, macDHex)) || m.Equal(handshake.MAC{}) {
		t.Errorf("MAC.Equal does not tell MACs apart")
	}
	if handshake.NewNonce() == handshake.NewNonce() {
		t.Errorf("NewNonce returned the same nonce twice")
	}
}

// Every part of the binding changes the MACs: a relay that differs from
// the real peer in any one of them (its pid, uid, namespace, or the socket
// file the dialer reached) makes the handshake fail.
func TestBindingChangesMACs(t *testing.T) {
	l, d := nonce(t, nonceLHex), nonce(t, nonceDHex)
	for _, tc := range []struct {
		name   string
		change func(*handshake.Binding)
	}{
		{"listener pid", func(b *handshake.Binding) { b.ListenerPID = 101 }},
		{"dialer pid", func(b *handshake.Binding) { b.DialerPID = 201 }},
		{"listener uid", func(b *handshake.Binding) { b.ListenerUID = 1 }},
		{"dialer uid", func(b *handshake.Binding) { b.DialerUID = 1 }},
		{"listener pid namespace", func(b *handshake.Binding) { b.ListenerNS.PID++ }},
		{"dialer user namespace", func(b *handshake.Binding) { b.DialerNS.User++ }},
		{"socket device", func(b *handshake.Binding) { b.SocketDev++ }},
		{"socket inode", func(b *handshake.Binding) { b.SocketIno++ }},
	} {
		b := binding()
		tc.change(&b)
		if handshake.DialerMAC(key, l, d, b) == mac(t, macDHex) {
			t.Errorf("%s: DialerMAC unchanged", tc.name)
		}
		if handshake.ListenerMAC(key, l, d, b) == mac(t, macLHex) {
			t.Errorf("%s: ListenerMAC unchanged", tc.name)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	hello := "4d50514c 02 00 01 00 " + nonceLHex + nsHex
	reply := "4d50514c 02 01 0000 " + nonceDHex + nsHex + macDHex
	verdict := "00 00000000000000 " + macLHex
	for _, tc := range []struct {
		name string
		msg  message
		wire string
		want error
		text string // the error's text
	}{
		{"hello short", &handshake.Hello{}, hello[:len(hello)-2], handshake.ErrLength, "wrong length: 55 bytes, not 56"},
		{"hello long", &handshake.Hello{}, hello + "00", handshake.ErrLength, "wrong length: 57 bytes, not 56"},
		{"hello of version 1", &handshake.Hello{}, "4d50514c 01 00 01 00 " + nonceLHex, handshake.ErrLength, "wrong length: 40 bytes, not 56"},
		{"hello magic", &handshake.Hello{}, "4d50514d" + hello[8:], handshake.ErrMagic, "not an mpq handshake"},
		{"hello version", &handshake.Hello{}, "4d50514c 01" + hello[11:], handshake.ErrVersion, "version 1"},
		{"hello status", &handshake.Hello{}, "4d50514c 02 04" + hello[14:], handshake.ErrStatus, "unknown status 4"},
		{"hello flags", &handshake.Hello{}, "4d50514c 02 00 03" + hello[17:], handshake.ErrFlags, "unknown flags 0x3"},
		{"hello reserved", &handshake.Hello{}, "4d50514c 02 00 01 80" + hello[20:], handshake.ErrReserved, "reserved byte not zero (byte 7 is 0x80)"},
		{"reply empty", &handshake.Reply{}, "", handshake.ErrLength, "wrong length: 0 bytes, not 88"},
		{"reply magic", &handshake.Reply{}, "00000000" + reply[8:], handshake.ErrMagic, "not an mpq handshake"},
		{"reply version", &handshake.Reply{}, "4d50514c 00" + reply[11:], handshake.ErrVersion, "version 0"},
		{"reply flags", &handshake.Reply{}, "4d50514c 02 81" + reply[14:], handshake.ErrFlags, "unknown flags 0x81"},
		{"reply reserved", &handshake.Reply{}, "4d50514c 02 01 0001" + reply[19:], handshake.ErrReserved, "reserved byte not zero (byte 7 is 0x1)"},
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
