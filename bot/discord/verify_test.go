package discord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestVerifyAcceptsWhatCryptoEd25519Accepts: the expanded-key verifier
// says yes to exactly the signatures crypto/ed25519 says yes to — valid
// ones, and none of the tampered, non-canonical or small-order ones.
func TestVerifyAcceptsWhatCryptoEd25519Accepts(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	rng := rand.New(rand.NewPCG(1, 2))

	type input struct {
		name      string
		pub, sig  []byte
		body      []byte
		wantValid bool // what crypto/ed25519 is expected to say
	}
	var inputs []input
	pub, priv, _ := ed25519.GenerateKey(nil)
	for i := range 100 {
		body := make([]byte, 1+rng.IntN(2000))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, append([]byte(ts), body...))
		inputs = append(inputs, input{"valid", pub, sig, body, true})

		flipped := slices.Clone(sig)
		flipped[rng.IntN(len(flipped))] ^= 1 << rng.IntN(8)
		inputs = append(inputs, input{"signature bit flipped", pub, flipped, body, false})

		tampered := slices.Clone(body)
		tampered[rng.IntN(len(tampered))] ^= 1 << rng.IntN(8)
		inputs = append(inputs, input{"body bit flipped", pub, sig, tampered, false})

		if i < 10 {
			inputs = append(inputs, input{"S + L (non-canonical S)", pub, withSPlusL(sig), body, false})
		}
	}
	// Small-order points: the identity (y = 1) as R, and as A with S = 0.
	identity := make([]byte, 32)
	identity[0] = 1
	zeroS := make([]byte, 32)
	inputs = append(inputs,
		input{"identity A, identity R, S = 0", identity, append(slices.Clone(identity), zeroS...), []byte("x"), true},
		input{"identity R, S = 0, real key", pub, append(slices.Clone(identity), zeroS...), []byte("x"), false},
	)
	// A non-canonical encoding of the identity (y = 1 + p).
	nonCanonical := littleEndian(new(big.Int).Add(big.NewInt(1), fieldP()))
	inputs = append(inputs, input{"non-canonical identity A", nonCanonical, append(slices.Clone(identity), zeroS...), []byte("x"), true})

	for _, in := range inputs {
		msg := append([]byte(ts), in.body...)
		std := ed25519.Verify(in.pub, msg, in.sig)
		if std != in.wantValid {
			t.Fatalf("%s: crypto/ed25519 says %v, the test expected %v", in.name, std, in.wantValid)
		}
		key, err := ParsePublicKey(hex.EncodeToString(in.pub))
		if err != nil {
			t.Fatalf("%s: %v", in.name, err)
		}
		h := http.Header{"X-Signature-Timestamp": {ts}, "X-Signature-Ed25519": {hex.EncodeToString(in.sig)}}
		ours := Verify(key, h, in.body, now) == nil
		if ours != std {
			t.Errorf("%s: Verify says %v, crypto/ed25519 says %v", in.name, ours, std)
		}
	}
}

// fieldP is 2^255 - 19.
func fieldP() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}

// withSPlusL returns sig with S replaced by S + L, the group order: the
// same point equation, but an encoding RFC 8032 requires refusing.
func withSPlusL(sig []byte) []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	s := new(big.Int).SetBytes(reversed(sig[32:]))
	return append(slices.Clone(sig[:32]), littleEndian(s.Add(s, l))...)
}

func littleEndian(n *big.Int) []byte {
	b := make([]byte, 32)
	n.FillBytes(b)
	return reversed(b)
}

func reversed(b []byte) []byte {
	r := bytes.Clone(b)
	slices.Reverse(r)
	return r
}
