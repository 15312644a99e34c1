// cosigncheck cross-checks unhardcoded's C2SP notes and tlog-cosignature v1 lines with the Go
// reference note implementation, golang.org/x/mod/sumdb/note.
//
//	cosigncheck verify LOG_VKEY WITNESS_VKEY < note      prints the cosignature timestamp
//	cosigncheck cosign LOG_VKEY NAME SEED_HEX TIME < note  prints the note cosigned by Go
//
// The cosigner is a note.Verifier/note.Signer of its own: x/mod knows Ed25519 log keys (type
// 0x01) only, and a cosignature/v1 signs a prefixed message (c2sp.org/tlog-cosignature).
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func keyHash(name string, public []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{0x04})
	h.Write(public)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

type cosigner struct {
	name      string
	public    ed25519.PublicKey
	private   ed25519.PrivateKey
	timestamp uint64
	seen      *uint64
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return keyHash(c.name, c.public) }

func message(ts uint64, msg []byte) []byte {
	return append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", ts)), msg...)
}

func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if !ed25519.Verify(c.public, message(ts, msg), sig[8:]) {
		return false
	}
	*c.seen = ts
	return true
}

func (c *cosigner) Sign(msg []byte) ([]byte, error) {
	out := make([]byte, 8, 8+ed25519.SignatureSize)
	binary.BigEndian.PutUint64(out, c.timestamp)
	return append(out, ed25519.Sign(c.private, message(c.timestamp, msg))...), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "verify":
		logVerifier, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail(err)
		}
		parts := strings.SplitN(os.Args[3], "+", 3)
		raw, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || len(raw) != 33 || raw[0] != 0x04 {
			fail(fmt.Errorf("not a cosignature/v1 vkey: %s", os.Args[3]))
		}
		var seen uint64
		w := &cosigner{name: parts[0], public: raw[1:], seen: &seen}
		if fmt.Sprintf("%08x", w.KeyHash()) != parts[1] {
			fail(fmt.Errorf("key ID %s, computed %08x", parts[1], w.KeyHash()))
		}
		n, err := note.Open(input, note.VerifierList(logVerifier, w))
		if err != nil {
			fail(err)
		}
		names := []string{}
		for _, s := range n.Sigs {
			names = append(names, s.Name)
		}
		if len(n.Sigs) != 2 {
			fail(fmt.Errorf("verified signatures: %v", names))
		}
		fmt.Println(seen)
	case "cosign":
		logVerifier, err := note.NewVerifier(os.Args[2])
		if err != nil {
			fail(err)
		}
		seed, err := hex.DecodeString(os.Args[4])
		if err != nil {
			fail(err)
		}
		ts, err := strconv.ParseUint(os.Args[5], 10, 64)
		if err != nil {
			fail(err)
		}
		private := ed25519.NewKeyFromSeed(seed)
		var seen uint64
		c := &cosigner{
			name: os.Args[3], public: private.Public().(ed25519.PublicKey),
			private: private, timestamp: ts, seen: &seen,
		}
		n, err := note.Open(input, note.VerifierList(logVerifier))
		if err != nil {
			fail(err)
		}
		signed, err := note.Sign(n, c)
		if err != nil {
			fail(err)
		}
		os.Stdout.Write(signed)
	}
}
