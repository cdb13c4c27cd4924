package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CryptoBound is the pure public-key cost of one join on the cluster head,
// measured in this process: ES256 verify (the device's signature) + ES256
// sign (the CH's answer) + ECDH P-256 (the member key), no network, no
// storage, no CBOR.
type CryptoBound struct {
	Cores      int     `json:"cores"`
	PerCore    float64 `json:"per_core_ops_s"` // per goroutine, all cores busy
	Throughput float64 `json:"ops_s"`          // all cores together
	OpMicros   float64 `json:"op_us"`          // one verify+sign+ECDH on one core
}

// MeasureCryptoBound runs verify+sign+ECDH on every core (GOMAXPROCS
// goroutines) for d and reports the rate. Run it in the same run as the
// load it bounds: the machine is shared, absolute rates drift.
func MeasureCryptoBound(d time.Duration) (CryptoBound, error) {
	devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CryptoBound{}, err
	}
	chKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CryptoBound{}, err
	}
	chECDH, err := chKey.ECDH()
	if err != nil {
		return CryptoBound{}, err
	}
	devECDH, err := devKey.PublicKey.ECDH()
	if err != nil {
		return CryptoBound{}, err
	}
	msg := make([]byte, 300) // a join request's size
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, devKey, digest[:])
	if err != nil {
		return CryptoBound{}, err
	}
	cores := runtime.GOMAXPROCS(0)
	var total atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for time.Since(start) < d {
				h := sha256.Sum256(msg)
				ok := ecdsa.VerifyASN1(&devKey.PublicKey, h[:], sig)
				_, err1 := ecdsa.SignASN1(rand.Reader, chKey, h[:])
				_, err2 := chECDH.ECDH(devECDH)
				if !ok || err1 != nil || err2 != nil {
					failed.Store(true)
					return
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if failed.Load() {
		return CryptoBound{}, errCrypto
	}
	rate := float64(total.Load()) / elapsed
	return CryptoBound{Cores: cores, PerCore: rate / float64(cores), Throughput: rate, OpMicros: 1e6 / (rate / float64(cores))}, nil
}
