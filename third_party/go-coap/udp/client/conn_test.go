package client_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/atomic"
)

const testNumParallel = 64

const (
	testNameOKA      = "ok-a"
	testNameOKB      = "ok-b"
	testNameNotFound = "notfound"
)

func bodyToBytes(t *testing.T, r io.Reader) []byte {
	t.Helper()
	buf := bytes.NewBuffer(nil)
	_, err := buf.ReadFrom(r)
	require.NoError(t, err)
	return buf.Bytes()
}

func TestQBlockAutoDiscoveryUsesQBlock2(t *testing.T) {
	listener, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer listener.Close()

	server := udp.NewServer(
		options.WithQBlockwise(options.QBlockwiseAuto),
	)
	defer server.Stop()
	serverDone := make(chan error, 1)
	go func() {
		serverDone <- server.Serve(listener)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := udp.Dial(listener.LocalAddr().String(),
		options.WithQBlockwise(options.QBlockwiseAuto),
	)
	require.NoError(t, err)
	defer conn.Close()

	req, err := conn.NewGetRequest(ctx, "/.well-known/core")
	require.NoError(t, err)
	qBlock, err := blockwise.EncodeQBlockOption(blockwise.SZX16, 0, false)
	require.NoError(t, err)
	req.SetOptionUint32(message.QBlock2, qBlock)
	response, err := conn.Do(req)
	require.NoError(t, err)
	defer conn.ReleaseMessage(response)
	require.Equal(t, codes.Content, response.Code())
	responseQBlock := mustGetOptionUint32(t, response, message.QBlock2)
	responseSZX, responseNUM, responseMore, err := blockwise.DecodeQBlockOption(responseQBlock)
	require.NoError(t, err)
	require.Equal(t, blockwise.SZX16, responseSZX)
	require.Zero(t, responseNUM)
	require.False(t, responseMore)
	require.Equal(t, []byte("</>;rt=\"core\""), bodyToBytes(t, response.Body()))

	conn.Close()
	server.Stop()
	select {
	case err = <-serverDone:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
}

func mustGetOptionUint32(t *testing.T, msg *pool.Message, option message.OptionID) uint32 {
	t.Helper()
	value, err := msg.GetOptionUint32(option)
	require.NoError(t, err)
	return value
}

func TestConnDeduplication(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()

	var cnt atomic.Int32
	// The response counts up with every get
	// so we can check if the handler is only called once per message ID
	err = m.Handle("/count", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.GET, r.Code())
		cnt.Add(1)
		errH := w.SetResponse(codes.Content, message.AppOctets, bytes.NewReader([]byte{byte(cnt.Load())}))
		require.NoError(t, errH)
		require.NotEmpty(t, w.Conn())
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m),
		options.WithErrors(func(err error) {
			require.NoError(t, err)
		}))
	defer s.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(),
		options.WithErrors(func(err error) {
			require.NoError(t, err)
		}),
	)
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	// Setup done - Run Tests

	// Process several datagrams that reflect retries and block transfer with duplicate messages
	ctx, cancel := context.WithTimeout(context.Background(), time.Second*60)
	defer cancel()

	var got *pool.Message

	// Same request, executed twice (needs the same token)
	getReq, err := cc.NewGetRequest(ctx, "/count")
	getReq.SetMessageID(1)

	require.NoError(t, err)
	got, err = cc.Do(getReq)
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())
	ct, err := got.ContentFormat()
	require.NoError(t, err)
	require.Equal(t, message.AppOctets, ct)
	require.Equal(t, []byte{1}, bodyToBytes(t, got.Body()))

	// Do the same request with the same message ID
	// and expect the response from the first request
	got, err = cc.Do(getReq)
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())
	ct, err = got.ContentFormat()
	require.NoError(t, err)
	require.Equal(t, message.AppOctets, ct)
	require.Equal(t, []byte{1}, bodyToBytes(t, got.Body()))
}

func TestConnDeduplicationRetransmission(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()

	var cnt atomic.Int32
	// The response counts up with every get
	// so we can check if the handler is only called once per message ID
	once := sync.Once{}
	err = m.Handle("/count", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.GET, r.Code())
		cnt.Add(1)
		errH := w.SetResponse(codes.Content, message.AppOctets, bytes.NewReader([]byte{byte(cnt.Load())}))
		require.NoError(t, errH)

		// Only one delay to trigger retransmissions
		once.Do(func() {
			<-time.After(200 * time.Millisecond)
		})
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m),
		options.WithErrors(func(err error) {
			require.NoError(t, err)
		}),
	)
	defer s.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(),
		options.WithErrors(func(err error) {
			require.NoError(t, err)
		}),
		options.WithTransmission(1, 100*time.Millisecond, 50),
	)
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	// Setup done - Run Tests

	// Process several datagrams that reflect retries and block transfer with duplicate messages
	ctx, cancel := context.WithTimeout(context.Background(), time.Second*60)
	defer cancel()

	var got *pool.Message

	// First request should get "1" as result
	// and is repeated due to retransmission parameters
	got, err = cc.Get(ctx, "/count")
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())
	ct, err := got.ContentFormat()
	require.NoError(t, err)
	require.Equal(t, message.AppOctets, ct)
	require.Equal(t, []byte{1}, bodyToBytes(t, got.Body()))

	// Second request should get "2" as result
	// verifying that the handler was not called on retransmissions
	got, err = cc.Get(ctx, "/count")
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())
	ct, err = got.ContentFormat()
	require.NoError(t, err)
	require.Equal(t, message.AppOctets, ct)
	require.Equal(t, []byte{2}, bodyToBytes(t, got.Body()))
}

func TestConnDeduplicationNonConfirmable(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()

	var cnt atomic.Int32
	err = m.Handle("/count", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		cnt.Add(1)
		errH := w.SetResponse(codes.Content, message.AppOctets, bytes.NewReader([]byte{byte(cnt.Load())}))
		require.NoError(t, errH)
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	conn, err := net.Dial("udp", l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := conn.Close()
		require.NoError(t, errC)
	}()

	exchange := func(typ message.Type, mid int32, token message.Token) *pool.Message {
		req := pool.NewMessage(context.Background())
		errS := req.SetupGet("/count", token)
		require.NoError(t, errS)
		req.SetType(typ)
		req.SetMessageID(mid)
		data, errM := req.MarshalWithEncoder(coder.DefaultCoder)
		require.NoError(t, errM)
		_, errW := conn.Write(data)
		require.NoError(t, errW)
		errD := conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		require.NoError(t, errD)
		buf := make([]byte, 4096)
		n, errR := conn.Read(buf)
		require.NoError(t, errR)
		resp := pool.NewMessage(context.Background())
		_, errU := resp.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n])
		require.NoError(t, errU)
		return resp
	}

	// A duplicated NON request must be answered from the cache, not processed again.
	got := exchange(message.NonConfirmable, 0x1000, message.Token{0x0a})
	require.Equal(t, message.Token{0x0a}, got.Token())
	require.Equal(t, []byte{1}, bodyToBytes(t, got.Body()))
	responseMID := got.MessageID()

	got = exchange(message.NonConfirmable, 0x1000, message.Token{0x0a})
	require.Equal(t, message.Token{0x0a}, got.Token())
	require.Equal(t, []byte{1}, bodyToBytes(t, got.Body()))
	require.Equal(t, int32(1), cnt.Load())

	// A new request that happens to reuse the message ID of the server's
	// response must be processed, not answered with the cached response.
	got = exchange(message.Confirmable, responseMID, message.Token{0x0b})
	require.Equal(t, message.Acknowledgement, got.Type())
	require.Equal(t, message.Token{0x0b}, got.Token())
	require.Equal(t, []byte{2}, bodyToBytes(t, got.Body()))
	require.Equal(t, int32(2), cnt.Load())
}

func testParallelConnGet(t *testing.T, numParallel int) {
	type args struct {
		path string
		opts message.Options
	}
	tests := []struct {
		name              string
		args              args
		wantCode          codes.Code
		wantContentFormat *message.MediaType
		wantPayload       interface{}
		wantErr           bool
	}{
		{
			name: testNameOKA,
			args: args{
				path: "/a",
			},
			wantCode:          codes.BadRequest,
			wantContentFormat: &message.TextPlain,
			wantPayload:       make([]byte, 5330),
		},
		{
			name: testNameOKB,
			args: args{
				path: "/b",
			},
			wantCode:          codes.Content,
			wantContentFormat: &message.TextPlain,
			wantPayload:       []byte("b"),
		},
		{
			name: testNameNotFound,
			args: args{
				path: "/c",
			},
			wantCode: codes.NotFound,
		},
	}

	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()
	err = m.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.GET, r.Code())
		errH := w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader(make([]byte, 5330)))
		require.NoError(t, errH)
		require.NotEmpty(t, w.Conn())
	}))
	require.NoError(t, err)
	err = m.Handle("/b", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.GET, r.Code())
		errH := w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("b")))
		require.NoError(t, errH)
		require.NotEmpty(t, w.Conn())
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			wg.Add(numParallel)
			for i := 0; i < numParallel; i++ {
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Second*30)
					defer cancel()
					got, err := cc.Get(ctx, tt.args.path, tt.args.opts...)
					if tt.wantErr {
						assert.Error(t, err)
						return
					}
					assert.NoError(t, err)
					assert.Equal(t, tt.wantCode, got.Code())
					if tt.wantContentFormat != nil {
						ct, err := got.ContentFormat()
						assert.NoError(t, err)
						assert.Equal(t, *tt.wantContentFormat, ct)
						buf := bytes.NewBuffer(nil)
						_, err = buf.ReadFrom(got.Body())
						assert.NoError(t, err)
						assert.Equal(t, tt.wantPayload, buf.Bytes())
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestParallelConnGet(t *testing.T) {
	testParallelConnGet(t, testNumParallel)
}

func TestConnGet(t *testing.T) {
	testParallelConnGet(t, 1)
}

func TestConnPostWithoutToken(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		require.NoError(t, l.Close())
	}()

	payload := bytes.Repeat([]byte("payload"), 500)
	receivedBody := make(chan []byte, 1)
	m := mux.NewRouter()
	require.NoError(t, m.Handle("/tokenless", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		require.Empty(t, r.Token())
		body, readErr := r.ReadBody()
		require.NoError(t, readErr)
		receivedBody <- body
		require.NoError(t, w.SetResponse(codes.Changed, message.TextPlain, bytes.NewReader([]byte("ok"))))
	})))

	s := udp.NewServer(options.WithMux(m))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		assert.NoError(t, s.Serve(l))
	}()
	defer wg.Wait()
	defer s.Stop()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		require.NoError(t, cc.Close())
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*10)
	defer cancel()
	req, err := cc.NewPostRequest(ctx, "/tokenless", message.AppOctets, bytes.NewReader(payload))
	require.NoError(t, err)
	defer cc.ReleaseMessage(req)
	req.SetToken(nil)

	resp, err := cc.Do(req)
	require.NoError(t, err)
	defer cc.ReleaseMessage(resp)
	require.Equal(t, codes.Changed, resp.Code())
	require.Empty(t, resp.Token())
	require.Equal(t, payload, <-receivedBody)
}

func TestConnGetSeparateMessage(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()
	err = m.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		r.Hijack()
		go func() {
			defer w.Conn().ReleaseMessage(r.Message)
			time.Sleep(time.Second * 1)
			assert.Equal(t, codes.GET, r.Code())
			customResp := message.Message{
				Code:    codes.Content,
				Token:   r.Token(),
				Options: make(message.Options, 0, 16),
				// Body:    bytes.NewReader(make([]byte, 10)),
			}
			optsBuf := make([]byte, 32)
			opts, used, errH := customResp.Options.SetContentFormat(optsBuf, message.TextPlain)
			if errors.Is(errH, message.ErrTooSmall) {
				optsBuf = append(optsBuf, make([]byte, used)...)
				opts, _, errH = customResp.Options.SetContentFormat(optsBuf, message.TextPlain)
			}
			if errH != nil {
				log.Printf("cannot set options to response: %v", errH)
				return
			}
			customResp.Options = opts
			resp := pool.NewMessage(r.Context())
			resp.SetMessage(customResp)

			errW := w.Conn().WriteMessage(resp)
			if errW != nil && !errors.Is(errW, context.Canceled) {
				log.Printf("cannot set response: %v", errW)
			}
		}()
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(), options.WithHandlerFunc(func(_ *responsewriter.ResponseWriter[*client.Conn], r *pool.Message) {
		require.Failf(t, "Unexpected msg", "Received unexpected message: %+v", r)
	}))
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*30)
	defer cancel()

	req, err := cc.NewGetRequest(ctx, "/a")
	require.NoError(t, err)
	req.SetType(message.Confirmable)
	req.SetMessageID(message.GetMID())
	resp, err := cc.Do(req)
	require.NoError(t, err)
	assert.Equal(t, codes.Content, resp.Code())
}

func testConnPost(t *testing.T, numParallel int) {
	type args struct {
		path          string
		contentFormat message.MediaType
		payload       io.ReadSeeker
		opts          message.Options
	}
	tests := []struct {
		name              string
		args              args
		wantCode          codes.Code
		wantContentFormat *message.MediaType
		wantPayload       interface{}
		wantErr           bool
	}{
		{
			name: testNameOKA,
			args: args{
				path:          "/a",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader(make([]byte, 7000)),
			},
			wantCode:          codes.BadRequest,
			wantContentFormat: &message.TextPlain,
			wantPayload:       make([]byte, 5330),
		},
		{
			name: testNameOKB,
			args: args{
				path:          "/b",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader([]byte("b-send")),
			},
			wantCode:          codes.Content,
			wantContentFormat: &message.TextPlain,
			wantPayload:       []byte("b"),
		},
		{
			name: testNameNotFound,
			args: args{
				path:          "/c",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader(make([]byte, 21)),
			},
			wantCode: codes.NotFound,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := coapNet.NewListenUDP("udp", "")
			require.NoError(t, err)
			defer func() {
				errC := l.Close()
				require.NoError(t, errC)
			}()
			var wg sync.WaitGroup
			defer wg.Wait()

			m := mux.NewRouter()
			err = m.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
				assert.Equal(t, codes.POST, r.Code())
				ct, errH := r.Options().GetUint32(message.ContentFormat)
				require.NoError(t, errH)
				assert.Equal(t, message.TextPlain, message.MediaType(ct))
				buf, errH := io.ReadAll(r.Body())
				require.NoError(t, errH)
				assert.Len(t, buf, 7000)

				errH = w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader(make([]byte, 5330)))
				require.NoError(t, errH)
				require.NotEmpty(t, w.Conn())
			}))
			require.NoError(t, err)
			err = m.Handle("/b", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
				assert.Equal(t, codes.POST, r.Code())
				ct, errH := r.Options().GetUint32(message.ContentFormat)
				require.NoError(t, errH)
				assert.Equal(t, message.TextPlain, message.MediaType(ct))
				buf, errH := io.ReadAll(r.Body())
				require.NoError(t, errH)
				assert.Equal(t, buf, []byte("b-send"))
				errH = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("b")))
				require.NoError(t, errH)
				require.NotEmpty(t, w.Conn())
			}))
			require.NoError(t, err)

			s := udp.NewServer(options.WithMux(m))
			defer s.Stop()

			wg.Add(1)
			go func() {
				defer wg.Done()
				errS := s.Serve(l)
				assert.NoError(t, errS)
			}()

			cc, err := udp.Dial(l.LocalAddr().String())
			require.NoError(t, err)
			defer func() {
				errC := cc.Close()
				require.NoError(t, errC)
			}()

			var wgNumParallel sync.WaitGroup
			wgNumParallel.Add(numParallel)
			for i := 0; i < numParallel; i++ {
				go func() {
					defer wgNumParallel.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Second*30)
					defer cancel()
					got, err := cc.Post(ctx, tt.args.path, tt.args.contentFormat, tt.args.payload, tt.args.opts...)
					if tt.wantErr {
						assert.Error(t, err)
						return
					}
					assert.NoError(t, err)
					assert.Equal(t, tt.wantCode, got.Code())
					if tt.wantContentFormat != nil {
						ct, err := got.ContentFormat()
						assert.NoError(t, err)
						assert.Equal(t, *tt.wantContentFormat, ct)
						buf := bytes.NewBuffer(nil)
						_, err = buf.ReadFrom(got.Body())
						assert.NoError(t, err)
						assert.Equal(t, tt.wantPayload, buf.Bytes())
					}
				}()
			}
			wgNumParallel.Wait()
		})
	}
}

func TestConnPost(t *testing.T) {
	testConnPost(t, 1)
}

func TestParallelConnPost(t *testing.T) {
	testConnPost(t, testNumParallel)
}

func testConnPut(t *testing.T, numParallel int) {
	type args struct {
		path          string
		contentFormat message.MediaType
		payload       io.ReadSeeker
		opts          message.Options
	}
	tests := []struct {
		name              string
		args              args
		wantCode          codes.Code
		wantContentFormat *message.MediaType
		wantPayload       interface{}
		wantErr           bool
	}{
		{
			name: testNameOKA,
			args: args{
				path:          "/a",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader(make([]byte, 7000)),
			},
			wantCode:          codes.BadRequest,
			wantContentFormat: &message.TextPlain,
			wantPayload:       make([]byte, 5330),
		},
		{
			name: testNameOKB,
			args: args{
				path:          "/b",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader([]byte("b-send")),
			},
			wantCode:          codes.Content,
			wantContentFormat: &message.TextPlain,
			wantPayload:       []byte("b"),
		},
		{
			name: testNameNotFound,
			args: args{
				path:          "/c",
				contentFormat: message.TextPlain,
				payload:       bytes.NewReader(make([]byte, 21)),
			},
			wantCode: codes.NotFound,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := coapNet.NewListenUDP("udp", "")
			require.NoError(t, err)
			defer func() {
				errC := l.Close()
				require.NoError(t, errC)
			}()
			var wg sync.WaitGroup
			defer wg.Wait()

			m := mux.NewRouter()
			err = m.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
				assert.Equal(t, codes.PUT, r.Code())
				ct, errH := r.Options().GetUint32(message.ContentFormat)
				require.NoError(t, errH)
				assert.Equal(t, message.TextPlain, message.MediaType(ct))
				buf, errH := io.ReadAll(r.Body())
				require.NoError(t, errH)
				assert.Len(t, buf, 7000)

				errH = w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader(make([]byte, 5330)))
				require.NoError(t, errH)
				require.NotEmpty(t, w.Conn())
			}))
			require.NoError(t, err)
			err = m.Handle("/b", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
				assert.Equal(t, codes.PUT, r.Code())
				ct, errH := r.Options().GetUint32(message.ContentFormat)
				require.NoError(t, errH)
				assert.Equal(t, message.TextPlain, message.MediaType(ct))
				buf, errH := io.ReadAll(r.Body())
				require.NoError(t, errH)
				assert.Equal(t, buf, []byte("b-send"))
				errH = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("b")))
				require.NoError(t, errH)
				require.NotEmpty(t, w.Conn())
			}))
			require.NoError(t, err)

			s := udp.NewServer(options.WithMux(m))
			defer s.Stop()

			wg.Add(1)
			go func() {
				defer wg.Done()
				errS := s.Serve(l)
				assert.NoError(t, errS)
			}()

			cc, err := udp.Dial(l.LocalAddr().String())
			require.NoError(t, err)
			defer func() {
				errC := cc.Close()
				require.NoError(t, errC)
			}()
			var wgNumParallel sync.WaitGroup
			wgNumParallel.Add(numParallel)
			for i := 0; i < numParallel; i++ {
				go func() {
					defer wgNumParallel.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Second*30)
					defer cancel()
					got, err := cc.Put(ctx, tt.args.path, tt.args.contentFormat, tt.args.payload, tt.args.opts...)
					if tt.wantErr {
						assert.Error(t, err)
						return
					}
					assert.NoError(t, err)
					assert.Equal(t, tt.wantCode, got.Code())
					if tt.wantContentFormat != nil {
						ct, err := got.ContentFormat()
						assert.NoError(t, err)
						assert.Equal(t, *tt.wantContentFormat, ct)
						buf := bytes.NewBuffer(nil)
						_, err = buf.ReadFrom(got.Body())
						assert.NoError(t, err)
						assert.Equal(t, tt.wantPayload, buf.Bytes())
					}
				}()
			}
			wgNumParallel.Wait()
		})
	}
}

func TestConnPut(t *testing.T) {
	testConnPut(t, 1)
}

func TestParallelConnPut(t *testing.T) {
	testConnPut(t, testNumParallel)
}

func testConnDelete(t *testing.T, numParallel int) {
	type args struct {
		path string
		opts message.Options
	}
	tests := []struct {
		name              string
		args              args
		wantCode          codes.Code
		wantContentFormat *message.MediaType
		wantPayload       interface{}
		wantErr           bool
	}{
		{
			name: testNameOKA,
			args: args{
				path: "/a",
			},
			wantCode:          codes.BadRequest,
			wantContentFormat: &message.TextPlain,
			wantPayload:       make([]byte, 5330),
		},
		{
			name: testNameOKB,
			args: args{
				path: "/b",
			},
			wantCode:          codes.Deleted,
			wantContentFormat: &message.TextPlain,
			wantPayload:       []byte("b"),
		},
		{
			name: testNameNotFound,
			args: args{
				path: "/c",
			},
			wantCode: codes.NotFound,
		},
	}

	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()
	err = m.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.DELETE, r.Code())
		errS := w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader(make([]byte, 5330)))
		require.NoError(t, errS)
		require.NotEmpty(t, w.Conn())
	}))
	require.NoError(t, err)
	err = m.Handle("/b", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		assert.Equal(t, codes.DELETE, r.Code())
		errS := w.SetResponse(codes.Deleted, message.TextPlain, bytes.NewReader([]byte("b")))
		require.NoError(t, errS)
		require.NotEmpty(t, w.Conn())
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wgNumParallel sync.WaitGroup
			wgNumParallel.Add(numParallel)
			for i := 0; i < numParallel; i++ {
				go func() {
					defer wgNumParallel.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Second*30)
					defer cancel()
					got, err := cc.Delete(ctx, tt.args.path, tt.args.opts...)
					if tt.wantErr {
						assert.Error(t, err)
						return
					}
					assert.NoError(t, err)
					assert.Equal(t, tt.wantCode, got.Code())
					if tt.wantContentFormat != nil {
						ct, err := got.ContentFormat()
						assert.NoError(t, err)
						assert.Equal(t, *tt.wantContentFormat, ct)
						buf := bytes.NewBuffer(nil)
						_, err = buf.ReadFrom(got.Body())
						assert.NoError(t, err)
						assert.Equal(t, tt.wantPayload, buf.Bytes())
					}
				}()
			}
			wgNumParallel.Wait()
		})
	}
}

func TestConnDelete(t *testing.T) {
	testConnDelete(t, 1)
}

func TestParallelConnDelete(t *testing.T) {
	testConnDelete(t, testNumParallel)
}

func TestConnPing(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	s := udp.NewServer()
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond*200)
	defer cancel()
	err = cc.Ping(ctx)
	require.NoError(t, err)
}

func TestConnPingResponseIsReset(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	s := udp.NewServer()
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	// Send a raw CoAP Ping (Empty CON) and verify the response is RST per RFC 7252 §4.2
	conn, errD := net.Dial("udp", l.LocalAddr().String())
	require.NoError(t, errD)
	defer func() {
		errC := conn.Close()
		require.NoError(t, errC)
	}()

	// Build empty CON message: Ver=1, T=CON(0), TKL=0, Code=0.00, MID=1234
	ping := []byte{
		0x40,       // Ver=1, T=CON, TKL=0
		0x00,       // Code=0.00 (Empty)
		0x04, 0xd2, // MID=1234
	}
	_, errW := conn.Write(ping)
	require.NoError(t, errW)

	err = conn.SetReadDeadline(time.Now().Add(time.Second * 2))
	require.NoError(t, err)
	buf := make([]byte, 1024)
	n, errR := conn.Read(buf)
	require.NoError(t, errR)
	require.GreaterOrEqual(t, n, 4)

	// Parse response: verify type is RST (3) and MID matches
	respType := message.Type((buf[0] >> 4) & 0x3)
	respCode := codes.Code(buf[1])
	respMID := uint16(buf[2])<<8 | uint16(buf[3])
	require.Equal(t, message.Reset, respType, "CoAP Ping response must be RST per RFC 7252 §4.2")
	require.Equal(t, codes.Empty, respCode, "CoAP Ping response code must be 0.00 (Empty)")
	require.Equal(t, uint16(0x04d2), respMID, "CoAP Ping response MID must match request MID")
}

func TestConnRejectUnknownCriticalOptions(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	storeMu := sync.Mutex{}
	storeValue := []byte("atlas-critical-A")

	m := mux.NewRouter()
	err = m.Handle("/store", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		switch r.Code() {
		case codes.PUT:
			storeMu.Lock()
			storeValue = append(storeValue[:0], bodyToBytes(t, r.Body())...)
			storeMu.Unlock()
			errS := w.SetResponse(codes.Changed, message.TextPlain, nil)
			require.NoError(t, errS)
		case codes.GET:
			storeMu.Lock()
			payload := append([]byte(nil), storeValue...)
			storeMu.Unlock()
			errS := w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader(payload))
			require.NoError(t, errS)
		default:
			errS := w.SetResponse(codes.MethodNotAllowed, message.TextPlain, nil)
			require.NoError(t, errS)
		}
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	testCases := []struct {
		name          string
		rawRequestHex string
		optionID      string
	}{
		{
			name:          "unknown critical option 99",
			rawRequestHex: "43036f1166f302b573746f726510d14a01ff61746c61732d637269746963616c2d42",
			optionID:      "99",
		},
		{
			name:          "unknown critical option 13 after content format",
			rawRequestHex: "43036f1166f302b573746f7265101101ff61746c61732d637269746963616c2d42",
			optionID:      "13",
		},
		{
			name:          "if-none-match with illegal length",
			rawRequestHex: "43036f1166f30251006573746f726510ff61746c61732d637269746963616c2d42",
			optionID:      "5",
		},
	}

	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()

			setupResp, err := cc.Put(ctx, "/store", message.TextPlain, bytes.NewReader([]byte("atlas-critical-A")))
			require.NoError(t, err)
			require.Equal(t, codes.Changed, setupResp.Code())

			rawReq, err := hex.DecodeString(tc.rawRequestHex)
			require.NoError(t, err)
			rawResp := sendRawUDPDatagram(t, l.LocalAddr().String(), rawReq)

			decodedResp := pool.NewMessage(context.Background())
			_, err = decodedResp.UnmarshalWithDecoder(coder.DefaultCoder, rawResp)
			require.NoError(t, err)

			require.Equal(t, message.Acknowledgement, decodedResp.Type())
			require.Equal(t, codes.BadOption, decodedResp.Code())
			require.Contains(t, string(bodyToBytes(t, decodedResp.Body())), tc.optionID)

			getResp, err := cc.Get(ctx, "/store")
			require.NoError(t, err)
			require.Equal(t, codes.Content, getResp.Code())
			require.Equal(t, []byte("atlas-critical-A"), bodyToBytes(t, getResp.Body()))
		})
	}
}

func TestConnDropNonConfirmableWithUnknownCriticalOptions(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	storeMu := sync.Mutex{}
	storeValue := []byte("atlas-critical-A")

	m := mux.NewRouter()
	err = m.Handle("/store", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		switch r.Code() {
		case codes.PUT:
			storeMu.Lock()
			storeValue = append(storeValue[:0], bodyToBytes(t, r.Body())...)
			storeMu.Unlock()
			errS := w.SetResponse(codes.Changed, message.TextPlain, nil)
			require.NoError(t, errS)
		case codes.GET:
			storeMu.Lock()
			payload := append([]byte(nil), storeValue...)
			storeMu.Unlock()
			errS := w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader(payload))
			require.NoError(t, errS)
		default:
			errS := w.SetResponse(codes.MethodNotAllowed, message.TextPlain, nil)
			require.NoError(t, errS)
		}
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(m))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	// NON PUT /store with unknown critical option 99 and payload "atlas-critical-B"
	rawReq, err := hex.DecodeString("53036f1166f302b573746f726510d14a01ff61746c61732d637269746963616c2d42")
	require.NoError(t, err)

	conn, err := net.Dial("udp", l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := conn.Close()
		require.NoError(t, errC)
	}()
	_, err = conn.Write(rawReq)
	require.NoError(t, err)

	// RFC 7252 section 5.4.1: the message is rejected, so the handler must not answer it.
	err = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	require.NoError(t, err)
	buf := make([]byte, 4096)
	_, err = conn.Read(buf)
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	require.True(t, netErr.Timeout())

	getResp, err := cc.Get(ctx, "/store")
	require.NoError(t, err)
	require.Equal(t, codes.Content, getResp.Code())
	require.Equal(t, []byte("atlas-critical-A"), bodyToBytes(t, getResp.Body()))
}

func sendRawUDPDatagram(t *testing.T, target string, rawReq []byte) []byte {
	t.Helper()
	conn, err := net.Dial("udp", target)
	require.NoError(t, err)
	defer func() {
		errC := conn.Close()
		require.NoError(t, errC)
	}()

	err = conn.SetDeadline(time.Now().Add(2 * time.Second))
	require.NoError(t, err)

	_, err = conn.Write(rawReq)
	require.NoError(t, err)

	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	return append([]byte(nil), buf[:n]...)
}

func TestConnRequestMonitorCloseConnection(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()

	// The response counts up with every get
	// so we can check if the handler is only called once per message ID
	err = m.Handle("/test", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		errH := w.SetResponse(codes.Content, message.TextPlain, nil)
		require.NoError(t, errH)
	}))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*8)
	defer cancel()
	ctxRegMonitor, cancelReqMonitor := context.WithCancel(ctx)
	defer cancelReqMonitor()
	reqMonitorErr := make(chan struct{}, 1)
	testEOFError := errors.New("test error")
	s := udp.NewServer(
		options.WithMux(m),
		options.WithRequestMonitor(func(_ *client.Conn, req *pool.Message) (bool, error) {
			if req.Code() == codes.DELETE {
				return false, testEOFError
			}
			return false, nil
		}),
		options.WithErrors(func(err error) {
			t.Log(err)
			if errors.Is(err, testEOFError) {
				if errors.Is(err, testEOFError) {
					select {
					case reqMonitorErr <- struct{}{}:
						cancelReqMonitor()
					default:
					}
				}
			}
		}),
		options.WithOnNewConn(func(c *client.Conn) {
			t.Log("new conn")
			c.AddOnClose(func() {
				t.Log("close conn")
			})
		}))
	defer s.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(),
		options.WithErrors(func(err error) {
			t.Log(err)
		}),
	)
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	// Setup done - Run Tests
	// Same request, executed twice (needs the same token)
	getReq, err := cc.NewGetRequest(ctx, "/test")
	getReq.SetMessageID(1)

	require.NoError(t, err)
	got, err := cc.Do(getReq)
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())

	// New request but with DELETE code to trigger EOF error from request monitor
	deleteReq, err := cc.NewDeleteRequest(ctxRegMonitor, "/test")
	require.NoError(t, err)
	deleteReq.SetMessageID(2)
	_, err = cc.Do(deleteReq)
	require.Error(t, err)
	select {
	case <-reqMonitorErr:
	case <-ctx.Done():
		require.Fail(t, "request monitor not called")
	}
}

func TestConnRequestMonitorDropRequest(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()

	m := mux.NewRouter()

	// The response counts up with every get
	// so we can check if the handler is only called once per message ID
	err = m.Handle("/test", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		errH := w.SetResponse(codes.Content, message.TextPlain, nil)
		require.NoError(t, errH)
	}))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*2)
	defer cancel()
	s := udp.NewServer(
		options.WithMux(m),
		options.WithRequestMonitor(func(_ *client.Conn, req *pool.Message) (bool, error) {
			if req.Code() == codes.DELETE {
				t.Log("drop request")
				return true, nil
			}
			return false, nil
		}),
		options.WithErrors(func(err error) {
			require.NoError(t, err)
		}),
		options.WithOnNewConn(func(c *client.Conn) {
			t.Log("new conn")
			c.AddOnClose(func() {
				t.Log("close conn")
			})
		}))
	defer s.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(),
		options.WithErrors(func(err error) {
			t.Log(err)
		}),
	)
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	// Setup done - Run Tests
	// Same request, executed twice (needs the same token)
	getReq, err := cc.NewGetRequest(ctx, "/test")
	getReq.SetMessageID(1)

	require.NoError(t, err)
	got, err := cc.Do(getReq)
	require.NoError(t, err)
	require.Equal(t, codes.Content.String(), got.Code().String())

	// New request but with DELETE code to trigger EOF error from request monitor
	deleteReq, err := cc.NewDeleteRequest(ctx, "/test")
	require.NoError(t, err)
	deleteReq.SetMessageID(2)
	_, err = cc.Do(deleteReq)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
