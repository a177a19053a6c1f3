// Package handshake is the wire format of the handshake by which an
// mpq.Listener and a process that calls mpq.Dial open a connection over a
// Unix stream socket: four fixed-size messages as typed values, each with
// a Marshal that writes it and an Unmarshal that checks every byte it reads
// from the peer.
//
// # Messages
//
// In this order; the integers are single bytes, the nonces and MACs 32
// bytes each:
//
//	hello   listener -> dialer, 40 bytes: magic "MPQL", version, status, flags, 1 zero byte, listener nonce
//	reply   dialer -> listener, 72 bytes: magic "MPQL", version, flags, 2 zero bytes, dialer nonce, dialer MAC
//	verdict listener -> dialer, 40 bytes: status, 7 zero bytes, listener MAC
//	final   dialer -> listener,  1 byte:  status
//
// The version is 1. Flags has one bit, 1: the sender holds a key; the other
// bits are zero. A status is 0 (ok), 1 (rejected: the peer's user is not
// allowed), 2 (auth: a key missing or wrong) or 3 (bad: not a handshake of
// this version, or the rings could not be made or opened).
//
// A hello with status rejected is the listener's last message. A verdict
// with status ok carries, in the same sendmsg, one SCM_RIGHTS control
// message with the descriptors of the connection's two rings: first the one
// the dialer receives from, then the one it sends to. A verdict with any
// other status carries none and is the listener's last message. The final
// status is ok once the dialer has opened both rings, auth if the
// listener's MAC is wrong, bad otherwise.
//
// # Proof of the key
//
// With a key, the dialer MAC is HMAC-SHA256(key, "mpq dialer v1" | listener
// nonce | dialer nonce) and the listener MAC HMAC-SHA256(key, "mpq listener
// v1" | dialer nonce | listener nonce) (see [DialerMAC] and [ListenerMAC]).
// Without a key both are zero, and so is the listener MAC of a verdict that
// refuses the reply (status auth, or bad for a reply of another protocol).
//
// # Errors
//
// Unmarshal refuses a message of the wrong length ([ErrLength]), without
// the magic ([ErrMagic]), of another version ([ErrVersion]), with a status
// it does not know ([ErrStatus]), with flag bits it does not know
// ([ErrFlags]) or with a reserved byte that is not zero ([ErrReserved]).
// Whatever the bytes, it does not panic, and a message it accepts is
// written back byte for byte by Marshal.
package handshake
