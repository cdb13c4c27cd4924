package blockwise

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/dsnet/golib/memfile"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testNameSZX16   = "SZX16"
	testNameSZX32   = "SZX32"
	testNameSZX64   = "SZX64"
	testNameSZX128  = "SZX128"
	testNameSZX256  = "SZX256"
	testNameSZX512  = "SZX512"
	testNameSZX1024 = "SZX1024"
	testNameSZXBERT = "SZXBERT"
)

type testmessage struct {
	code     codes.Code
	ctx      context.Context
	token    message.Token
	options  message.Options
	payload  io.ReadSeeker
	sequence uint64
}

func toPoolMessage(m *testmessage) *pool.Message {
	msg := pool.NewMessage(m.ctx)
	msg.SetCode(m.code)
	msg.SetToken(m.token)
	msg.ResetOptionsTo(m.options)
	msg.SetBody(m.payload)
	msg.SetSequence(m.sequence)
	return msg
}

func fromPoolMessage(m *pool.Message) *testmessage {
	opts := m.Options()
	if len(opts) == 0 {
		opts = nil
	}
	return &testmessage{
		code:     m.Code(),
		ctx:      m.Context(),
		token:    m.Token(),
		options:  opts,
		payload:  m.Body(),
		sequence: m.Sequence(),
	}
}

type testClient struct {
	p *pool.Pool
}

func newTestClient() *testClient {
	return &testClient{
		p: pool.New(100, 1024),
	}
}

func (c *testClient) AcquireMessage(ctx context.Context) *pool.Message {
	return c.p.AcquireMessage(ctx)
}

func (c *testClient) ReleaseMessage(m *pool.Message) {
	c.p.ReleaseMessage(m)
}

func makeDo[C Client](t *testing.T, sender, receiver *BlockWise[C], senderMaxSZX SZX, senderMaxMessageSize uint32, receiverMaxSZX SZX, receiverMaxMessageSize uint32, next func(*responsewriter.ResponseWriter[C], *pool.Message)) func(*pool.Message) (*pool.Message, error) {
	return func(req *pool.Message) (*pool.Message, error) {
		c := make(chan *pool.Message)
		go func() {
			var roReq *pool.Message
			roReq = req
			for {
				var resp *pool.Message
				receiverResp := responsewriter.New(receiver.cc.AcquireMessage(roReq.Context()), receiver.cc)
				receiver.Handle(receiverResp, roReq, senderMaxSZX, senderMaxMessageSize, nil, next)
				t.Logf("receiver.Handle - receiverResp %v senderResp.Message: %v\n", receiverResp.Message(), roReq)
				senderResp := responsewriter.New(sender.cc.AcquireMessage(roReq.Context()), sender.cc)
				sender.Handle(senderResp, receiverResp.Message(), receiverMaxSZX, receiverMaxMessageSize, nil, func(_ *responsewriter.ResponseWriter[C], r *pool.Message) {
					resp = r
				})
				t.Logf("sender.Handle - senderResp %v receiverResp.Message: %v\n", senderResp.Message(), receiverResp.Message())
				if resp != nil {
					c <- resp
					return
				}
				roReq = senderResp.Message()
			}
		}()
		resp := <-c
		return resp, nil
	}
}

func TestBlockWiseDo(t *testing.T) {
	sender := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	receiver := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	type args struct {
		r              *testmessage
		szx            SZX
		maxMessageSize int64
		do             func(req *pool.Message) (*pool.Message, error)
	}
	tests := []struct {
		name    string
		args    args
		want    *testmessage
		wantErr bool
	}{
		{
			name: "SZX16-SZX16",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 128)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				do: makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX16, uint32(SZX16.Size()), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 128)),
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Changed,
							payload: bytes.NewReader(make([]byte, 17)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{2},
				code:    codes.Changed,
				payload: memfile.New(make([]byte, 17)),
			},
		},
		{
			name: "SZX16-SZX1024",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 128)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				do: makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX1024, uint32(SZX1024.Size()), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 128)),
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Changed,
							payload: bytes.NewReader(make([]byte, 17)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{2},
				code:    codes.Changed,
				payload: memfile.New(make([]byte, 17)),
			},
		},
		{
			name: "SZXBERT-SZXBERT",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{'B', 'E', 'R', 'T'},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 11111)),
				},
				szx:            SZXBERT,
				maxMessageSize: SZXBERT.Size() * 2,
				do: makeDo(t, sender, receiver, SZXBERT, uint32(SZXBERT.Size()*2), SZXBERT, uint32(SZXBERT.Size()*2), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{'B', 'E', 'R', 'T'},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 11111)),
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Changed,
							payload: bytes.NewReader(make([]byte, 22222)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{'B', 'E', 'R', 'T'},
				code:    codes.Changed,
				payload: memfile.New(make([]byte, 22222)),
			},
		},

		{
			name: "PUT-SZX16-SZX16",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.PUT,
					payload: bytes.NewReader(make([]byte, 128)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				do: makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX16, uint32(SZX16.Size()), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.PUT,
						payload: memfile.New(make([]byte, 128)),
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Created,
							payload: bytes.NewReader(make([]byte, 17)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{2},
				code:    codes.Created,
				payload: memfile.New(make([]byte, 17)),
			},
		},
		{
			name: "GET-SZX16-SZX16",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.GET,
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				do: makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX16, uint32(SZX16.Size()), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.GET,
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Content,
							payload: bytes.NewReader(make([]byte, 399)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{2},
				code:    codes.Content,
				payload: memfile.New(make([]byte, 399)),
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sender.Do(toPoolMessage(tt.args.r), tt.args.szx, uint32(tt.args.maxMessageSize), nil, tt.args.do)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			receivingMessagesCache := sender.receivingMessagesCache.LoadAndDeleteAll()
			require.Empty(t, receivingMessagesCache)
			sendingMessagesCache := sender.sendingMessagesCache.LoadAndDeleteAll()
			require.Empty(t, sendingMessagesCache)
			require.NoError(t, err)
			assert.Equal(t, tt.want, fromPoolMessage(got))
		})
	}
}

func TestBlockWiseRFC8132BodyMethods(t *testing.T) {
	for _, code := range []codes.Code{codes.FETCH, codes.PATCH, codes.IPATCH} {
		t.Run(code.String(), func(t *testing.T) {
			sender := New(newTestClient(), time.Hour, func(error) {}, nil)
			receiver := New(newTestClient(), time.Hour, func(error) {}, nil)
			payload := bytes.Repeat([]byte{0x42}, 64)
			do := makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX16, uint32(SZX16.Size()),
				func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, code, r.Code())
					require.True(t, r.HasOption(message.ContentFormat))
					got, err := r.ReadBody()
					require.NoError(t, err)
					require.Equal(t, payload, got)
					w.SetMessage(toPoolMessage(&testmessage{
						ctx:   context.Background(),
						token: r.Token(),
						code:  codes.Changed,
					}))
				})

			req := pool.NewMessage(context.Background())
			req.SetCode(code)
			req.SetToken(message.Token{byte(code)})
			req.MustSetPath("/resource")
			req.SetContentFormat(message.AppOctets)
			req.SetBody(bytes.NewReader(payload))
			resp, err := sender.Do(req, SZX16, uint32(SZX16.Size()), nil, do)
			require.NoError(t, err)
			require.Equal(t, codes.Changed, resp.Code())
		})
	}
}

/*
func TestBlockWiseParallel(t *testing.T) {
	sender := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	receiver := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	type args struct {
		r              *testmessage
		szx            SZX
		maxMessageSize int64
		do             func(req *pool.Message) (*pool.Message, error)
	}
	tests := []struct {
		name    string
		args    args
		want    *testmessage
		wantErr bool
	}{
		{
			name: "SZX16-SZX1024",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 20000)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				do: makeDo(t, sender, receiver, SZX16, uint32(SZX16.Size()), SZX1024, uint32(SZX1024.Size()), func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 20000)),
					}, fromPoolMessage(r))
					w.SetMessage(
						toPoolMessage(&testmessage{
							ctx:     context.Background(),
							token:   r.Token(),
							code:    codes.Changed,
							payload: bytes.NewReader(make([]byte, 30000)),
						}),
					)
				}),
			},
			want: &testmessage{
				ctx:     context.Background(),
				token:   []byte{2},
				code:    codes.Changed,
				payload: memfile.New(make([]byte, 30000)),
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			defer wg.Wait()
			r := toPoolMessage(tt.args.r)
			bodysize, err := r.BodySize()
			require.NoError(t, err)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := &testmessage{
						ctx:     r.Context(),
						token:   r.Token(),
						options: r.Options(),
						code:    r.Code(),
						payload: bytes.NewReader(make([]byte, bodysize)),
					}
					got, err := sender.Do(toPoolMessage(req), tt.args.szx, uint32(tt.args.maxMessageSize), nil, tt.args.do)
					if tt.wantErr {
						require.Error(t, err)
						return
					}
					require.NoError(t, err)
					assert.Equal(t, tt.want, fromPoolMessage(got))
				}()
			}
		})
	}
}
*/

func TestEncodeBlockOption(t *testing.T) {
	type args struct {
		szx                 SZX
		blockNumber         int64
		moreBlocksFollowing bool
	}
	tests := []struct {
		name    string
		args    args
		want    uint32
		wantErr bool
	}{
		{name: testNameSZX16, args: args{szx: SZX16, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(0)},
		{name: testNameSZX16, args: args{szx: SZX16, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(8)},
		{name: testNameSZX32, args: args{szx: SZX32, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(1)},
		{name: testNameSZX32, args: args{szx: SZX32, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(9)},
		{name: testNameSZX64, args: args{szx: SZX64, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(2)},
		{name: testNameSZX64, args: args{szx: SZX64, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(10)},
		{name: testNameSZX128, args: args{szx: SZX128, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(3)},
		{name: testNameSZX128, args: args{szx: SZX128, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(11)},
		{name: testNameSZX256, args: args{szx: SZX256, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(4)},
		{name: testNameSZX256, args: args{szx: SZX256, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(12)},
		{name: testNameSZX512, args: args{szx: SZX512, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(5)},
		{name: testNameSZX512, args: args{szx: SZX512, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(13)},
		{name: testNameSZX1024, args: args{szx: SZX1024, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(6)},
		{name: testNameSZX1024, args: args{szx: SZX1024, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(14)},
		{name: testNameSZXBERT, args: args{szx: SZXBERT, blockNumber: 0, moreBlocksFollowing: false}, want: uint32(7)},
		{name: testNameSZXBERT, args: args{szx: SZXBERT, blockNumber: 0, moreBlocksFollowing: true}, want: uint32(15)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeBlockOption(tt.args.szx, tt.args.blockNumber, tt.args.moreBlocksFollowing)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeBlockOption(t *testing.T) {
	type args struct {
		blockVal uint32
	}
	tests := []struct {
		name                    string
		args                    args
		wantSzx                 SZX
		wantBlockNumber         int64
		wantMoreBlocksFollowing bool
		wantErr                 bool
	}{
		{name: testNameSZX16, args: args{blockVal: uint32(0)}, wantSzx: SZX16, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX16, args: args{blockVal: uint32(8)}, wantSzx: SZX16, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX32, args: args{blockVal: uint32(1)}, wantSzx: SZX32, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX32, args: args{blockVal: uint32(9)}, wantSzx: SZX32, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX64, args: args{blockVal: uint32(2)}, wantSzx: SZX64, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX64, args: args{blockVal: uint32(10)}, wantSzx: SZX64, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX128, args: args{blockVal: uint32(3)}, wantSzx: SZX128, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX128, args: args{blockVal: uint32(11)}, wantSzx: SZX128, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX256, args: args{blockVal: uint32(4)}, wantSzx: SZX256, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX256, args: args{blockVal: uint32(12)}, wantSzx: SZX256, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX512, args: args{blockVal: uint32(5)}, wantSzx: SZX512, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX512, args: args{blockVal: uint32(13)}, wantSzx: SZX512, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZX1024, args: args{blockVal: uint32(6)}, wantSzx: SZX1024, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZX1024, args: args{blockVal: uint32(14)}, wantSzx: SZX1024, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: testNameSZXBERT, args: args{blockVal: uint32(7)}, wantSzx: SZXBERT, wantBlockNumber: 0, wantMoreBlocksFollowing: false},
		{name: testNameSZXBERT, args: args{blockVal: uint32(15)}, wantSzx: SZXBERT, wantBlockNumber: 0, wantMoreBlocksFollowing: true},
		{name: "error", args: args{blockVal: 0x1000000}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotSzx, gotBlockNumber, gotMoreBlocksFollowing, err := DecodeBlockOption(tt.args.blockVal)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSzx, gotSzx)
			assert.Equal(t, tt.wantBlockNumber, gotBlockNumber)
			assert.Equal(t, tt.wantMoreBlocksFollowing, gotMoreBlocksFollowing)
		})
	}
}

func makeWriteReq[C Client](sender, receiver *BlockWise[C], senderMaxSZX SZX, senderMaxMessageSize uint32, receiverMaxSZX SZX, receiverMaxMessageSize uint32, next func(*responsewriter.ResponseWriter[C], *pool.Message)) func(*pool.Message) error {
	return func(req *pool.Message) error {
		c := make(chan bool, 1)
		go func() {
			var roReq *pool.Message
			roReq = req
			for {
				receiverResp := responsewriter.New(receiver.cc.AcquireMessage(roReq.Context()), receiver.cc)
				receiver.Handle(receiverResp, roReq, senderMaxSZX, senderMaxMessageSize, nil, func(w *responsewriter.ResponseWriter[C], r *pool.Message) {
					defer close(c)
					next(w, r)
				})
				senderResp := responsewriter.New(sender.cc.AcquireMessage(roReq.Context()), sender.cc)
				orig := senderResp.Message()
				sender.Handle(senderResp, receiverResp.Message(), receiverMaxSZX, receiverMaxMessageSize, nil, func(*responsewriter.ResponseWriter[C], *pool.Message) {
				})
				if orig == senderResp.Message() {
					select {
					case <-c:
						return
					default:
						close(c)
					}
				}
				select {
				case <-c:
					return
				default:
				}
				roReq = senderResp.Message()
			}
		}()
		<-c
		return nil
	}
}

func TestBlockWiseWriteTestMessage(t *testing.T) {
	sender := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	receiver := New(newTestClient(), time.Second*3600, func(err error) { t.Log(err) }, nil)
	type args struct {
		r                *testmessage
		szx              SZX
		maxMessageSize   int64
		writetestmessage func(req *pool.Message) error
	}
	tests := []struct {
		name    string
		args    args
		wantErr bool
	}{
		{
			name: "SZX16-SZX16",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{1},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.Content,
					payload: bytes.NewReader(make([]byte, 128)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				writetestmessage: makeWriteReq(sender, receiver, SZX16, uint32(SZX16.Size()), SZX16, uint32(SZX16.Size()), func(_ *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Failf(t, "Unexpected msg", "Received unexpected message: %+v", r)
				}),
			},
		},
		{
			name: "SZX16-SZX1024",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{2},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 128)),
				},
				szx:            SZX16,
				maxMessageSize: SZX16.Size(),
				writetestmessage: makeWriteReq(sender, receiver, SZX16, uint32(SZX16.Size()), SZX1024, uint32(SZX1024.Size()), func(_ *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{2},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 128)),
					}, fromPoolMessage(r))
				}),
			},
		},
		{
			name: "SZXBERT-SZXBERT",
			args: args{
				r: &testmessage{
					ctx:     context.Background(),
					token:   []byte{'B', 'E', 'R', 'T'},
					options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
					code:    codes.POST,
					payload: bytes.NewReader(make([]byte, 11111)),
				},
				szx:            SZXBERT,
				maxMessageSize: SZXBERT.Size() * 2,
				writetestmessage: makeWriteReq(sender, receiver, SZXBERT, uint32(SZXBERT.Size()*2), SZXBERT, uint32(SZXBERT.Size()*5), func(_ *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					require.Equal(t, &testmessage{
						ctx:     context.Background(),
						token:   []byte{'B', 'E', 'R', 'T'},
						options: message.Options{message.Option{ID: message.URIPath, Value: []byte("abc")}},
						code:    codes.POST,
						payload: memfile.New(make([]byte, 11111)),
					}, fromPoolMessage(r))
				}),
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sender.WriteMessage(toPoolMessage(tt.args.r), tt.args.szx, uint32(tt.args.maxMessageSize), nil, tt.args.writetestmessage)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestProcessReceivedMessageReturnsEntityIncompleteForMissingPreviousFinalBlock(t *testing.T) {
	bw := New(newTestClient(), time.Second*3600, func(error) {}, nil)
	ctx := context.Background()
	token := message.Token{0xAA}

	block0, err := EncodeBlockOption(SZX16, 0, true)
	require.NoError(t, err)
	first := bw.cc.AcquireMessage(ctx)
	first.SetCode(codes.POST)
	first.SetToken(token)
	first.SetOptionUint32(message.Block1, block0)
	first.SetBody(bytes.NewReader(make([]byte, int(SZX16.Size()))))
	w1 := responsewriter.New(bw.cc.AcquireMessage(ctx), bw.cc)
	bw.Handle(w1, first, SZX16, uint32(SZX16.Size()), nil, func(_ *responsewriter.ResponseWriter[*testClient], _ *pool.Message) {
		require.Fail(t, "next must not be called while more blocks follow")
	})
	require.Equal(t, codes.Continue, w1.Message().Code())

	block2Final, err := EncodeBlockOption(SZX16, 2, false)
	require.NoError(t, err)
	second := bw.cc.AcquireMessage(ctx)
	second.SetCode(codes.POST)
	second.SetToken(token)
	second.SetOptionUint32(message.Block1, block2Final)
	second.SetBody(bytes.NewReader(make([]byte, int(SZX16.Size()))))
	w2 := responsewriter.New(bw.cc.AcquireMessage(ctx), bw.cc)
	bw.Handle(w2, second, SZX16, uint32(SZX16.Size()), nil, func(_ *responsewriter.ResponseWriter[*testClient], _ *pool.Message) {
		require.Fail(t, "next must not be called for incomplete transfer")
	})
	require.Equal(t, codes.RequestEntityIncomplete, w2.Message().Code())
	require.Empty(t, bw.receivingMessagesCache.LoadAndDeleteAll())
}

func TestProcessReceivedMessageReturnsEntityIncompleteForSingleFinalNonZeroBlock(t *testing.T) {
	bw := New(newTestClient(), time.Second*3600, func(error) {}, nil)
	ctx := context.Background()
	block2Final, err := EncodeBlockOption(SZX16, 2, false)
	require.NoError(t, err)

	req := bw.cc.AcquireMessage(ctx)
	req.SetCode(codes.POST)
	req.SetToken(message.Token{0xAB})
	req.SetOptionUint32(message.Block1, block2Final)
	req.SetBody(bytes.NewReader(make([]byte, int(SZX16.Size()))))

	w := responsewriter.New(bw.cc.AcquireMessage(ctx), bw.cc)
	bw.Handle(w, req, SZX16, uint32(SZX16.Size()), nil, func(_ *responsewriter.ResponseWriter[*testClient], _ *pool.Message) {
		require.Fail(t, "next must not be called for incomplete transfer")
	})
	require.Equal(t, codes.RequestEntityIncomplete, w.Message().Code())
}

func TestReceivingMessagesCacheIsBounded(t *testing.T) {
	var gotErr error
	bw := New(newTestClient(), time.Second*3600, func(err error) { gotErr = err }, nil)
	bw.SetReceivingMessagesCacheMaxEntries(1)
	ctx := context.Background()

	block0, err := EncodeBlockOption(SZX16, 0, true)
	require.NoError(t, err)

	first := bw.cc.AcquireMessage(ctx)
	first.SetCode(codes.POST)
	first.SetToken(message.Token{0x01})
	first.SetOptionUint32(message.Block1, block0)
	first.SetBody(bytes.NewReader(make([]byte, int(SZX16.Size()))))
	w1 := responsewriter.New(bw.cc.AcquireMessage(ctx), bw.cc)
	bw.Handle(w1, first, SZX16, uint32(SZX16.Size()), nil, func(_ *responsewriter.ResponseWriter[*testClient], _ *pool.Message) {
		require.Fail(t, "next must not be called while more blocks follow")
	})
	require.Equal(t, codes.Continue, w1.Message().Code())

	second := bw.cc.AcquireMessage(ctx)
	second.SetCode(codes.POST)
	second.SetToken(message.Token{0x02})
	second.SetOptionUint32(message.Block1, block0)
	second.SetBody(bytes.NewReader(make([]byte, int(SZX16.Size()))))
	w2 := responsewriter.New(bw.cc.AcquireMessage(ctx), bw.cc)
	bw.Handle(w2, second, SZX16, uint32(SZX16.Size()), nil, func(_ *responsewriter.ResponseWriter[*testClient], _ *pool.Message) {
		require.Fail(t, "next must not be called when cache is full")
	})
	require.Equal(t, codes.ServiceUnavailable, w2.Message().Code())
	require.Error(t, gotErr)
	require.ErrorContains(t, gotErr, "receiving messages cache is full")
	require.Len(t, bw.receivingMessagesCache.LoadAndDeleteAll(), 1)
}

func TestReceivingMessagesCacheConcurrentLimit(t *testing.T) {
	for _, limit := range []int{0, 1, 8} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			testReceivingMessagesCacheConcurrentLimit(t, limit)
		})
	}
}

func testReceivingMessagesCacheConcurrentLimit(t *testing.T, limit int) {
	t.Helper()
	const requests = 128
	bw := New(newTestClient(), time.Hour, func(error) {}, nil)
	bw.SetReceivingMessagesCacheMaxEntries(limit)
	start := make(chan struct{})
	results := make(chan error, requests)
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := bw.cc.AcquireMessage(context.Background())
			defer bw.cc.ReleaseMessage(req)
			req.SetToken(message.Token{byte(i)})
			<-start
			_, closeFn, err := bw.getCachedReceivedMessage(nil, req, receivedBlock{exchangeKey: req.Token().Hash()}, time.Now().Add(time.Hour))
			if err == nil {
				closeFn()
			}
			results <- err
		}(i)
	}
	close(start)
	wg.Wait()
	close(results)
	accepted := 0
	for err := range results {
		if err == nil {
			accepted++
		} else {
			require.ErrorIs(t, err, errReceivingMessagesCacheFull)
		}
	}
	expected := limit
	if limit == 0 {
		expected = requests
	}
	require.Equal(t, expected, accepted)
	require.Equal(t, expected, bw.receivingMessagesCache.Length())
}

func TestReceivingMessagesCacheReusesExistingAndExpiredEntries(t *testing.T) {
	bw := New(newTestClient(), time.Hour, func(error) {}, nil)
	bw.SetReceivingMessagesCacheMaxEntries(1)
	req := bw.cc.AcquireMessage(context.Background())
	defer bw.cc.ReleaseMessage(req)
	req.SetToken(message.Token{1})
	key := req.Token().Hash()
	msg, closeFn, err := bw.getCachedReceivedMessage(nil, req, receivedBlock{exchangeKey: key}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	closeFn()

	cached, closeFn, err := bw.getCachedReceivedMessage(nil, req, receivedBlock{exchangeKey: key}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Same(t, msg, cached)
	closeFn()

	bw.receivingMessagesCache.Load(key).ValidUntil.Store(time.Now().Add(-time.Second))
	req.SetToken(message.Token{2})
	_, closeFn, err = bw.getCachedReceivedMessage(nil, req, receivedBlock{exchangeKey: req.Token().Hash()}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	closeFn()
	require.Equal(t, 1, bw.receivingMessagesCache.Length())
}

func TestBlock1MissingBlocksAndRetransmission(t *testing.T) {
	tests := []struct {
		name  string
		nums  []int64
		more  []bool
		codes []codes.Code
	}{
		{
			name: "missing first non-final block", nums: []int64{1}, more: []bool{true},
			codes: []codes.Code{codes.RequestEntityIncomplete},
		},
		{
			name: "missing intermediate non-final block", nums: []int64{0, 2}, more: []bool{true, true},
			codes: []codes.Code{codes.Continue, codes.RequestEntityIncomplete},
		},
		{
			name: "missing intermediate final block", nums: []int64{0, 2}, more: []bool{true, false},
			codes: []codes.Code{codes.Continue, codes.RequestEntityIncomplete},
		},
		{
			name: "duplicate non-final block", nums: []int64{0, 0, 1}, more: []bool{true, true, false},
			codes: []codes.Code{codes.Continue, codes.Continue, codes.Changed},
		},
		{
			name: "contiguous blocks", nums: []int64{0, 1, 2}, more: []bool{true, true, false},
			codes: []codes.Code{codes.Continue, codes.Continue, codes.Changed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bw := New(newTestClient(), time.Hour, func(error) {}, nil)
			for i, num := range tt.nums {
				block, err := EncodeBlockOption(SZX128, num, tt.more[i])
				require.NoError(t, err)
				req := bw.cc.AcquireMessage(context.Background())
				req.SetCode(codes.PUT)
				req.SetToken(message.Token{0xDD})
				req.SetOptionUint32(message.Block1, block)
				req.SetBody(bytes.NewReader(bytes.Repeat([]byte{byte(num)}, int(SZX128.Size()))))
				w := responsewriter.New(bw.cc.AcquireMessage(req.Context()), bw.cc)
				called := false
				bw.Handle(w, req, SZX128, uint32(SZX128.Size()), nil, func(w *responsewriter.ResponseWriter[*testClient], r *pool.Message) {
					called = true
					body, err := io.ReadAll(r.Body())
					require.NoError(t, err)
					var expected []byte
					for n := int64(0); n <= num; n++ {
						expected = append(expected, bytes.Repeat([]byte{byte(n)}, int(SZX128.Size()))...)
					}
					require.Equal(t, expected, body)
					require.NoError(t, w.SetResponse(codes.Changed, message.TextPlain, nil))
				})
				require.Equal(t, tt.codes[i], w.Message().Code())
				require.Equal(t, tt.codes[i] == codes.Changed, called)
				bw.cc.ReleaseMessage(req)
				bw.cc.ReleaseMessage(w.Message())
			}
			require.Zero(t, bw.receivingMessagesCache.Length())
		})
	}
}
