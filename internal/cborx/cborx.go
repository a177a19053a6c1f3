// Package cborx holds the CBOR modes of mpq, in one place: the encoding
// both the CBOR codec (package mpq) and package proc write, and the two
// decodings they read with.
package cborx

import "github.com/fxamacker/cbor/v2"

var (
	// Enc encodes times as tagged RFC 3339 strings with nanoseconds, so
	// that a time.Time decodes to the instant it was.
	Enc = must(cbor.EncOptions{
		Time:    cbor.TimeRFC3339Nano,
		TimeTag: cbor.EncTagRequired,
	}.UserBufferEncMode())

	// Untrusted decodes what any process with access to a queue may have
	// written: bounded nesting and sizes, no duplicate map keys, valid
	// UTF-8 only.
	Untrusted = must(cbor.DecOptions{
		MaxNestedLevels:   32,
		MaxArrayElements:  131072,
		MaxMapPairs:       131072,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		UTF8:              cbor.UTF8RejectInvalid,
		IndefLength:       cbor.IndefLengthAllowed,
		TagsMd:            cbor.TagsAllowed,
		ExtraReturnErrors: cbor.ExtraDecErrorNone,
	}.DecMode())

	// Trusted decodes what this same program wrote, checked as it was
	// encoded (proc's arguments and reports between parent and child): the
	// bounds are the machine's, and a string may hold any bytes, as a Go
	// string may.
	Trusted = must(cbor.DecOptions{
		MaxNestedLevels:  65535,
		MaxArrayElements: 2147483647,
		MaxMapPairs:      2147483647,
		UTF8:             cbor.UTF8DecodeInvalid,
	}.DecMode())
)

func must[M any](m M, err error) M {
	if err != nil {
		panic(err)
	}
	return m
}
