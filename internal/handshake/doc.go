// Package handshake is the wire format of the handshake by which an
// mpq.Listener and a process that calls mpq.Dial open a connection over a
// Unix stream socket: four fixed-size messages as typed values, each with
// a Marshal that writes it and an Unmarshal that checks every byte it reads
// from the peer.
//
// # Messages
//
// In this order; the integers are single bytes, the nonces and MACs 32
// bytes each, the namespaces 16 (the pid then the user namespace number
// of the sender, 8 bytes each, big-endian; see [Namespaces]):
//
//	hello   listener -> dialer, 56 bytes: magic "MPQL", version, status, flags, 1 zero byte, listener nonce, listener namespaces
//	reply   dialer -> listener, 88 bytes: magic "MPQL", version, flags, 2 zero bytes, dialer nonce, dialer namespaces, dialer MAC
//	verdict listener -> dialer, 40 bytes: status, 7 zero bytes, listener MAC
//	final   dialer -> listener,  1 byte:  status
//
// The version is 2 (version 1 had no namespaces and MACs of the nonces
// only). Flags has one bit, 1: the sender holds a key; the other
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
// With a key, the dialer MAC is HMAC-SHA256(key, "mpq dialer v2" | listener
// nonce | dialer nonce | binding) and the listener MAC HMAC-SHA256(key, "mpq
// listener v2" | dialer nonce | listener nonce | binding) (see [DialerMAC]
// and [ListenerMAC]). Without a key both are zero, and so is the listener
// MAC of a verdict that refuses the reply (status auth, or bad for a reply
// of another protocol).
//
// The binding (see [Binding]) is ten 8-byte big-endian numbers: the
// listener's pid and user namespace numbers, the dialer's, the device and
// inode of the socket file, the listener's and the dialer's pid, and the
// listener's and the dialer's effective uid. Each side fills it with what
// it knows of itself and what the socket's peer credentials (SO_PEERCRED)
// say of the other; the pids are zero unless the two pid namespace numbers
// are equal, the uids unless the two user namespace numbers are. So a
// process that relays the bytes between a dialer and a listener (and is
// the peer each of them sees) makes the two sides' bindings differ, and
// neither MAC checks out: the listener sends a verdict with status auth and
// no rings.
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
