package udp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log"
	"net"
	"runtime"
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
	"github.com/plgd-dev/go-coap/v3/options/config"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"github.com/plgd-dev/go-coap/v3/udp/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/atomic"
	"golang.org/x/sync/semaphore"
)

func sendAndReadUDPDatagram(t *testing.T, c *net.UDPConn, req []byte) []byte {
	t.Helper()
	err := c.SetDeadline(time.Now().Add(time.Second))
	require.NoError(t, err)
	_, err = c.Write(req)
	require.NoError(t, err)

	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	require.NoError(t, err)
	return buf[:n]
}

func requireResetWithMID(t *testing.T, datagram []byte, mid uint16) {
	t.Helper()
	require.GreaterOrEqual(t, len(datagram), 4)
	first := datagram[0]
	require.Equal(t, uint8(1), first>>6, "response version must be 1")
	require.Equal(t, message.Reset, message.Type((first>>4)&0x3), "response type must be RST")
	require.Equal(t, uint8(0), datagram[1], "response code must be Empty")
	require.Equal(t, mid, binary.BigEndian.Uint16(datagram[2:4]), "response MID must match request MID")
}

type mcastreceiver struct {
	msgs []*pool.Message
	sync.Mutex
}

func (m *mcastreceiver) process(_ *client.Conn, resp *pool.Message) {
	m.Lock()
	defer m.Unlock()
	resp.Hijack()
	m.msgs = append(m.msgs, resp)
}

func (m *mcastreceiver) pop() []*pool.Message {
	m.Lock()
	defer m.Unlock()
	r := m.msgs
	m.msgs = nil
	return r
}

/*
func TestServerDiscoverIotivity(t *testing.T) {
	timeout := time.Millisecond * 500
	multicastAddr := "224.0.1.187:5683"
	path := "/oic/res"

	var wg sync.WaitGroup
	defer wg.Wait()

	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	sd := NewServer()
	defer sd.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recv := &mcastreceiver{}
	err = sd.Discover(ctx, multicastAddr, path, recv.process)
	require.NoError(t, err)
	got := recv.pop()
	assert.Greater(t, len(got), 1)
	assert.Equal(t, codes.Content, got[0].Code())
	buf, err := io.ReadAll(got[0].Body())
	require.NoError(t, err)
}
*/

func ifaceSupportsIPv4(iface net.Interface) bool {
	addrs, err := iface.Addrs()
	if err != nil {
		return false
	}
	for _, addr := range addrs {
		var ip net.IP
		switch v := addr.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if ip != nil && ip.To4() != nil {
			return true // has at least one IPv4
		}
	}
	return false
}

func TestServerDiscover(t *testing.T) {
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	log.Printf("ifs:%v", ifs)
	var iface net.Interface
	for _, i := range ifs {
		if i.Flags&net.FlagMulticast == net.FlagMulticast && i.Flags&net.FlagUp == net.FlagUp && isRunningInterface(i) && ifaceSupportsIPv4(i) {
			iface = i
			log.Printf("first available multicast if:%v", iface)
			break
		}
	}
	require.NotEmpty(t, iface)
	const goosDarwin = "darwin"
	type args struct {
		opts []coapNet.MulticastOption
	}
	tests := []struct {
		name    string
		args    args
		wantErr bool
		skip    func() bool
	}{
		{
			name: "valid any interface",
			args: args{
				opts: []coapNet.MulticastOption{coapNet.WithAnyMulticastInterface()},
			},
			skip: func() bool {
				return runtime.GOOS == goosDarwin
			},
		},
		{
			name: "valid first interface",
			args: args{
				opts: []coapNet.MulticastOption{coapNet.WithMulticastInterface(iface)},
			},
		},
		{
			name: "valid all interfaces",
			args: args{
				opts: []coapNet.MulticastOption{coapNet.WithAllMulticastInterface()},
			},
			skip: func() bool {
				return runtime.GOOS == goosDarwin
			},
		},
	}

	timeout := time.Millisecond * 500
	multicastAddr := "224.0.1.187:9999"
	path := "/oic/res"

	l, err := coapNet.NewListenUDP("udp4", multicastAddr)
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()

	ifaces, err := net.Interfaces()
	require.NoError(t, err)

	a, err := net.ResolveUDPAddr("udp4", multicastAddr)
	require.NoError(t, err)

	for i := range ifaces {
		iface := ifaces[i]
		errJ := l.JoinGroup(&iface, a)
		if errJ != nil {
			t.Logf("cannot JoinGroup(%v, %v): %v", iface, a, errJ)
		}
	}
	err = l.SetMulticastLoopback(true)
	require.NoError(t, err)

	var wg sync.WaitGroup
	defer wg.Wait()

	s := udp.NewServer(options.WithHandlerFunc(func(w *responsewriter.ResponseWriter[*client.Conn], _ *pool.Message) {
		errS := w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader(make([]byte, 5330)))
		require.NoError(t, errS)
		require.NotNil(t, w.Conn())
	}))
	defer s.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	sd := udp.NewServer()
	defer sd.Stop()

	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != nil && tt.skip() {
				t.Log("skipped")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			recv := &mcastreceiver{}
			err = sd.Discover(ctx, multicastAddr, path, recv.process, tt.args.opts...)
			require.NoError(t, err)
			got := recv.pop()
			require.NotEmpty(t, got)
			require.Equal(t, codes.BadRequest, got[0].Code())
		})
	}
}

func TestServerRejectsMalformedConfirmableWithoutTearingDownConnection(t *testing.T) {
	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	var newConnCount atomic.Int32
	s := udp.NewServer(options.WithOnNewConn(func(*client.Conn) {
		newConnCount.Inc()
	}))
	t.Cleanup(func() {
		s.Stop()
	})

	var wg sync.WaitGroup
	t.Cleanup(func() {
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(ld)
		assert.NoError(t, errS)
	}()

	serverAddr, ok := ld.LocalAddr().(*net.UDPAddr)
	require.True(t, ok)
	cli, err := net.DialUDP("udp4", nil, serverAddr)
	require.NoError(t, err)
	defer func() {
		errC := cli.Close()
		require.NoError(t, errC)
	}()

	// Create the per-peer connection with a valid ping and verify RST response.
	pong := sendAndReadUDPDatagram(t, cli, []byte{0x40, 0x00, 0x11, 0x11})
	requireResetWithMID(t, pong, 0x1111)
	require.Eventually(t, func() bool {
		return newConnCount.Load() == 1
	}, time.Second, 10*time.Millisecond)

	// Malformed CON: version=1, type=CON, TKL=9 (invalid), MID=0x2222.
	rst := sendAndReadUDPDatagram(t, cli, []byte{0x49, 0x01, 0x22, 0x22})
	requireResetWithMID(t, rst, 0x2222)

	// Verify the same per-peer connection remains alive and is reused.
	pong = sendAndReadUDPDatagram(t, cli, []byte{0x40, 0x00, 0x33, 0x33})
	requireResetWithMID(t, pong, 0x3333)
	require.Equal(t, int32(1), newConnCount.Load(), "malformed datagram must not recreate per-peer connection")
}

func TestServerDoesNotRetainConnectionForMalformedFirstPacket(t *testing.T) {
	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	var newConnCount atomic.Int32
	s := udp.NewServer(options.WithOnNewConn(func(*client.Conn) {
		newConnCount.Inc()
	}))
	t.Cleanup(func() {
		s.Stop()
	})

	var wg sync.WaitGroup
	t.Cleanup(func() {
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(ld)
		assert.NoError(t, errS)
	}()

	serverAddr, ok := ld.LocalAddr().(*net.UDPAddr)
	require.True(t, ok)
	cli, err := net.DialUDP("udp4", nil, serverAddr)
	require.NoError(t, err)
	defer func() {
		errC := cli.Close()
		require.NoError(t, errC)
	}()

	// Malformed CON: version=1, type=CON, TKL=9 (invalid), MID=0x4444.
	rst := sendAndReadUDPDatagram(t, cli, []byte{0x49, 0x01, 0x44, 0x44})
	requireResetWithMID(t, rst, 0x4444)
	require.Equal(t, int32(1), newConnCount.Load())

	// A valid packet from the same peer must create a new connection.
	rst = sendAndReadUDPDatagram(t, cli, []byte{0x40, 0x00, 0x55, 0x55})
	requireResetWithMID(t, rst, 0x5555)
	require.Equal(t, int32(2), newConnCount.Load())
}

func TestServerCleanUpConns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second*5)
	defer cancel()
	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	checkClose := semaphore.NewWeighted(2)
	err = checkClose.Acquire(ctx, 2)
	require.NoError(t, err)
	defer func() {
		errA := checkClose.Acquire(ctx, 2)
		require.NoError(t, errA)
	}()

	sd := udp.NewServer(options.WithOnNewConn(func(cc *client.Conn) {
		cc.AddOnClose(func() {
			checkClose.Release(1)
		})
	}))
	defer sd.Stop()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(ld.LocalAddr().String())
	require.NoError(t, err)
	cc.AddOnClose(func() {
		checkClose.Release(1)
	})
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
		<-cc.Done()
	}()
	err = cc.Ping(ctx)
	require.NoError(t, err)
}

func TestServerInactiveMonitor(t *testing.T) {
	var inactivityDetected atomic.Bool

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*8)
	defer cancel()

	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	checkClose := semaphore.NewWeighted(2)
	err = checkClose.Acquire(ctx, 2)
	require.NoError(t, err)
	sd := udp.NewServer(
		options.WithOnNewConn(func(cc *client.Conn) {
			cc.AddOnClose(func() {
				checkClose.Release(1)
			})
		}),
		options.WithInactivityMonitor(100*time.Millisecond, func(cc *client.Conn) {
			require.False(t, inactivityDetected.Load())
			inactivityDetected.Store(true)
			errC := cc.Close()
			require.NoError(t, errC)
		}),
		options.WithPeriodicRunner(periodic.New(ctx.Done(), time.Millisecond*10)),
		options.WithReceivedMessageQueueSize(32),
		options.WithProcessReceivedMessageFunc(func(req *pool.Message, cc *client.Conn, handler config.HandlerFunc[*client.Conn]) {
			cc.ProcessReceivedMessageWithHandler(req, handler)
		}),
	)

	var serverWg sync.WaitGroup
	defer func() {
		sd.Stop()
		serverWg.Wait()
	}()
	serverWg.Add(1)
	go func() {
		defer serverWg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(
		ld.LocalAddr().String(),
	)
	require.NoError(t, err)
	cc.AddOnClose(func() {
		checkClose.Release(1)
	})

	// send ping to create serverside connection
	ctxPing, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err = cc.Ping(ctxPing)
	require.NoError(t, err)

	err = cc.Ping(ctxPing)
	require.NoError(t, err)

	// wait for fire inactivity
	time.Sleep(time.Second * 2)

	err = cc.Close()
	require.NoError(t, err)
	<-cc.Done()

	err = checkClose.Acquire(ctx, 2)
	require.NoError(t, err)
	require.True(t, inactivityDetected.Load())
}

func TestServerKeepAliveMonitor(t *testing.T) {
	var inactivityDetected atomic.Bool

	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*8)
	defer cancel()

	checkClose := semaphore.NewWeighted(2)
	err = checkClose.Acquire(ctx, 2)
	require.NoError(t, err)
	sd := udp.NewServer(
		options.WithOnNewConn(func(cc *client.Conn) {
			cc.AddOnClose(func() {
				checkClose.Release(1)
			})
		}),
		options.WithKeepAlive(3, 100*time.Millisecond, func(cc *client.Conn) {
			require.False(t, inactivityDetected.Load())
			inactivityDetected.Store(true)
			errC := cc.Close()
			require.NoError(t, errC)
		}),
		options.WithPeriodicRunner(periodic.New(ctx.Done(), time.Millisecond*10)),
	)

	var serverWg sync.WaitGroup
	defer func() {
		sd.Stop()
		serverWg.Wait()
	}()
	serverWg.Add(1)
	go func() {
		defer serverWg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(
		ld.LocalAddr().String(),
		options.WithInactivityMonitor(time.Millisecond*10, func(cc *client.Conn) {
			time.Sleep(time.Millisecond * 500)
			errC := cc.Close()
			require.NoError(t, errC)
		}),
		options.WithPeriodicRunner(periodic.New(ctx.Done(), time.Millisecond*10)),
	)
	require.NoError(t, err)
	cc.AddOnClose(func() {
		checkClose.Release(1)
	})

	// send ping to create serverside connection
	ctx, cancel = context.WithTimeout(ctx, time.Second)
	defer cancel()
	err = cc.Ping(ctx)
	require.NoError(t, err)

	err = checkClose.Acquire(ctx, 2)
	require.NoError(t, err)
	require.True(t, inactivityDetected.Load())
}

func TestServerNewClient(t *testing.T) {
	newServer := func(l *coapNet.UDPConn) (*server.Server, func()) {
		var wg sync.WaitGroup
		s := udp.NewServer()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errS := s.Serve(l)
			assert.NoError(t, errS)
		}()
		return s, func() {
			s.Stop()
			wg.Wait()
		}
	}

	l, err := coapNet.NewListenUDP("udp", "[::1]:0")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	_, server0Shutdown := newServer(l)
	defer server0Shutdown()

	l1, err := coapNet.NewListenUDP("udp", "[::1]:0")
	require.NoError(t, err)
	defer func() {
		errC := l1.Close()
		require.NoError(t, errC)
	}()

	s1, server1shutdown := newServer(l1)
	defer server1shutdown()

	peer, err := net.ResolveUDPAddr("udp", l.LocalAddr().String())
	require.NoError(t, err)

	time.Sleep(time.Second)

	_, err = s1.NewConn(nil)
	require.ErrorContains(t, err, "invalid remote address")

	cc, err := s1.NewConn(peer)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*1)
	defer cancel()
	err = cc.Ping(ctx)
	require.NoError(t, err)
	err = cc.Close()
	require.NoError(t, err)

	// repeat ping - new client should be created
	cc, err = s1.NewConn(peer, nil)
	require.NoError(t, err)
	err = cc.Ping(ctx)
	require.NoError(t, err)
}

func TestServerNewConnWildcardBindRoutesResponseToClient(t *testing.T) {
	newServer := func(l *coapNet.UDPConn, opts ...server.Option) (*server.Server, func()) {
		var wg sync.WaitGroup
		var serveErr error
		s := udp.NewServer(opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveErr = s.Serve(l)
		}()
		return s, func() {
			s.Stop()
			wg.Wait()
			assert.NoError(t, serveErr)
		}
	}

	listenerA, err := coapNet.NewListenUDP("udp4", "0.0.0.0:0")
	require.NoError(t, err)
	defer func() {
		errC := listenerA.Close()
		require.NoError(t, errC)
	}()

	listenerB, err := coapNet.NewListenUDP("udp4", "0.0.0.0:0")
	require.NoError(t, err)
	defer func() {
		errC := listenerB.Close()
		require.NoError(t, errC)
	}()

	const putPath = "/somepath"

	var defaultHits atomic.Int32
	routerA := mux.NewRouter()
	routerA.DefaultHandleFunc(func(_ mux.ResponseWriter, req *mux.Message) {
		defaultHits.Inc()
		_, _ = req.ReadBody()
	})

	routerB := mux.NewRouter()
	routerB.HandleFunc(putPath, func(w mux.ResponseWriter, r *mux.Message) {
		if r.Code() != codes.PUT {
			_ = w.SetResponse(codes.MethodNotAllowed, message.TextPlain, bytes.NewReader([]byte("method not allowed")))
			return
		}
		body, errR := r.ReadBody()
		if errR != nil {
			_ = w.SetResponse(codes.BadRequest, message.TextPlain, bytes.NewReader([]byte(errR.Error())))
			return
		}
		_ = w.SetResponse(codes.Created, message.TextPlain, bytes.NewReader(body))
	})

	serverA, shutdownA := newServer(listenerA, options.WithMux(routerA))
	defer shutdownA()

	_, shutdownB := newServer(listenerB, options.WithMux(routerB))
	defer shutdownB()

	target := &net.UDPAddr{IP: net.ParseIP("127.0.0.1").To4(), Port: listenerB.LocalAddr().(*net.UDPAddr).Port}

	var cc *client.Conn
	require.Eventually(t, func() bool {
		ccCandidate, errN := serverA.NewConn(target)
		if errN != nil {
			return false
		}
		cc = ccCandidate
		return true
	}, time.Second, 10*time.Millisecond)
	require.NotNil(t, cc)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	resp, err := cc.Put(ctx, putPath, message.TextPlain, bytes.NewReader([]byte("payload")))
	require.NoError(t, err)
	defer cc.ReleaseMessage(resp)
	require.Equal(t, codes.Created, resp.Code())

	_, err = resp.ReadBody()
	require.NoError(t, err)

	assert.Never(t, func() bool { return defaultHits.Load() != 0 }, 100*time.Millisecond, 10*time.Millisecond)
}

func TestCheckForLossOrder(t *testing.T) {
	ld, err := coapNet.NewListenUDP("udp4", "")
	require.NoError(t, err)
	defer func() {
		errC := ld.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*8)
	defer cancel()

	const numMessages = 1000
	arrivedMessages := make([]uint64, 0, numMessages)
	var arrivedMessagesLock sync.Mutex

	sd := udp.NewServer(options.WithHandlerFunc(func(resp *responsewriter.ResponseWriter[*client.Conn], req *pool.Message) {
		errH := resp.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("1234")))
		require.NoError(t, errH)
		arrivedMessagesLock.Lock()
		defer arrivedMessagesLock.Unlock()
		arrivedMessages = append(arrivedMessages, binary.LittleEndian.Uint64(req.Token()))
	}))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := sd.Serve(ld)
		assert.NoError(t, errS)
	}()
	defer func() {
		sd.Stop()
		wg.Wait()
	}()

	cc, err := udp.Dial(ld.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
		<-cc.Done()
	}()
	for i := 0; i < numMessages; i++ {
		p, err := cc.NewGetRequest(ctx, "/tmp")
		require.NoError(t, err)
		bs := make([]byte, 8)
		binary.LittleEndian.PutUint64(bs, uint64(i))
		p.SetToken(bs)
		_, err = cc.Do(p)
		require.NoError(t, err)
	}
	arrivedMessagesLock.Lock()
	defer arrivedMessagesLock.Unlock()
	require.Len(t, arrivedMessages, numMessages)
	for idx, v := range arrivedMessages {
		require.Equal(t, uint64(idx), v)
	}
}

// The objective of the test is to confirm the system's behavior during reconnections.
// It specifically examines situations where a connection (cc) is established but eventually
// closed due to inactivity. Subsequently, a new cc is created. The test focuses on verifying
// the system's ability to handle cases where the message ID of the new cc is no longer
// initialized with the same value as the previous cc. The desired outcome is for the receiver
// to correctly identify the distinctiveness of the message ID and effectively process the
// incoming message without any instances of message loss.
func TestServerReconnectNewClient(t *testing.T) {
	newServer := func(l *coapNet.UDPConn, closedConn chan struct{}) (*server.Server, func()) {
		var wg sync.WaitGroup
		var opts []server.Option
		if closedConn != nil {
			opts = append(opts, options.WithInactivityMonitor(time.Second, func(cc *client.Conn) {
				log.Printf("inactivityMonitor")
				errC := cc.Close()
				require.NoError(t, errC)
				closedConn <- struct{}{}
			}))
		}
		s := udp.NewServer(opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errS := s.Serve(l)
			assert.NoError(t, errS)
		}()
		return s, func() {
			s.Stop()
			wg.Wait()
		}
	}

	l, err := coapNet.NewListenUDP("udp", "[::1]:0")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	_, server0Shutdown := newServer(l, nil)
	defer server0Shutdown()

	l1, err := coapNet.NewListenUDP("udp", "[::1]:0")
	require.NoError(t, err)
	defer func() {
		errC := l1.Close()
		require.NoError(t, errC)
	}()

	connClosed := make(chan struct{}, 1)
	s1, server1shutdown := newServer(l1, connClosed)
	defer server1shutdown()

	peer, err := net.ResolveUDPAddr("udp", l.LocalAddr().String())
	require.NoError(t, err)

	time.Sleep(time.Second)

	cc, err := s1.NewConn(peer)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*1)
	defer cancel()
	// increment messageID
	_, err = cc.Get(ctx, "/tmp")
	require.NoError(t, err)
	// increment messageID
	_, err = cc.Get(ctx, "/tmp")
	// increment messageID
	require.NoError(t, err)
	// increment messageID
	_, err = cc.Get(ctx, "/tmp")
	require.NoError(t, err)
	// increment messageID
	_, err = cc.Get(ctx, "/tmp")
	require.NoError(t, err)
	<-connClosed

	checkMessageID := make(map[int32]bool)
	for i := 0; i < 100; i++ {
		checkMessageID[cc.GetMessageID()] = true
	}

	// new client
	cc, err = s1.NewConn(peer, nil)
	require.NoError(t, err)
	ctx, cancel = context.WithTimeout(context.Background(), time.Second*1)
	defer cancel()
	// test if get is successful
	_, err = cc.Get(ctx, "/tmp")
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		require.False(t, checkMessageID[cc.GetMessageID()])
	}
}

func TestMuxPath(t *testing.T) {
	r := mux.NewRouter()
	err := r.Handle("/", mux.HandlerFunc(handleA))
	require.NoError(t, err)
	err = r.Handle("/a", mux.HandlerFunc(handleA))
	require.NoError(t, err)

	l, err := coapNet.NewListenUDP("udp", ":5688")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()
	s := udp.NewServer(options.WithMux(r))
	go func() {
		errL := s.Serve(l)
		assert.NoError(t, errL)
	}()

	type args struct {
		path string
	}
	tests := []struct {
		name     string
		args     args
		wantCode codes.Code
	}{
		{
			name:     "empty path",
			args:     args{path: ""},
			wantCode: codes.Content,
		},
		{
			name:     "root path",
			args:     args{path: "/"},
			wantCode: codes.Content,
		},
		{
			name:     "a path",
			args:     args{path: "/a"},
			wantCode: codes.Content,
		},
		{
			name:     "not found path",
			args:     args{path: "/b"},
			wantCode: codes.NotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testPath(t, tt.args.path, tt.wantCode)
		})
	}
}

func testPath(t *testing.T, path string, expCode codes.Code) {
	co, err := udp.Dial("localhost:5688")
	require.NoError(t, err)
	defer func() {
		errC := co.Close()
		require.NoError(t, errC)
	}()
	resp, err := co.Get(context.Background(), path)
	require.NoError(t, err)
	require.Equal(t, expCode, resp.Code())
}

func handleA(w mux.ResponseWriter, _ *mux.Message) {
	err := w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("hello world")))
	if err != nil {
		log.Printf("cannot set response: %v", err)
	}
}

func TestServerRejectsOversizedDatagram(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()

	var handlerCalls atomic.Int32
	r := mux.NewRouter()
	err = r.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		handlerCalls.Inc()
		errS := w.SetResponse(codes.Changed, message.TextPlain, nil)
		require.NoError(t, errS)
	}))
	require.NoError(t, err)

	const maxMessageSize = 1024
	packetErrors := make(chan error, 4)
	peerConnections := make(chan *client.Conn, 4)
	s := udp.NewServer(options.WithMux(r), options.WithMaxMessageSize(maxMessageSize),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
		options.WithOnNewConn(func(cc *client.Conn) {
			peerConnections <- cc
		}),
		options.WithErrors(func(err error) {
			packetErrors <- err
		}))
	var wg sync.WaitGroup
	defer func() {
		s.Stop()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	req := pool.NewMessage(context.Background())
	req.SetCode(codes.PUT)
	req.SetType(message.Confirmable)
	req.SetMessageID(1)
	req.SetToken([]byte{1})
	err = req.SetPath("/a")
	require.NoError(t, err)
	req.SetBody(bytes.NewReader(make([]byte, 2*maxMessageSize)))
	data, err := req.MarshalWithEncoder(coder.DefaultCoder)
	require.NoError(t, err)
	require.Greater(t, len(data), maxMessageSize)

	c, err := net.Dial("udp", l.LocalAddr().String())
	require.NoError(t, err)
	defer func() {
		errC := c.Close()
		require.NoError(t, errC)
	}()
	exchange := func(mid int32) {
		t.Helper()
		validReq := pool.NewMessage(context.Background())
		err = validReq.SetupPut("/a", message.Token{byte(mid)}, message.TextPlain, bytes.NewReader([]byte("valid")))
		require.NoError(t, err)
		validReq.SetType(message.Confirmable)
		validReq.SetMessageID(mid)
		validData, errM := validReq.MarshalWithEncoder(coder.DefaultCoder)
		require.NoError(t, errM)
		_, err = c.Write(validData)
		require.NoError(t, err)
		err = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		require.NoError(t, err)
		buf := make([]byte, 1500)
		n, errR := c.Read(buf)
		require.NoError(t, errR)
		resp := pool.NewMessage(context.Background())
		_, err = resp.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n])
		require.NoError(t, err)
		require.Equal(t, codes.Changed, resp.Code())
		require.Equal(t, message.Acknowledgement, resp.Type())
		require.Equal(t, validReq.MessageID(), resp.MessageID())
		require.Equal(t, validReq.Token(), resp.Token())
	}

	exchange(2)
	var peer *client.Conn
	select {
	case peer = <-peerConnections:
	case <-time.After(2 * time.Second):
		t.Fatal("peer connection was not created")
	}
	// The second size also exceeds the read buffer, triggering WSAEMSGSIZE on Windows.
	for i, size := range []int{maxMessageSize + 1, maxMessageSize + 2} {
		_, err = c.Write(data[:size])
		require.NoError(t, err)

		select {
		case packetErr := <-packetErrors:
			require.Error(t, packetErr)
		case <-time.After(2 * time.Second):
			t.Fatalf("oversized datagram of %d bytes was not reported", size)
		}
		require.Equal(t, int32(i+1), handlerCalls.Load())
		require.NoError(t, peer.Context().Err())

		exchange(int32(i + 3))
		require.Equal(t, int32(i+2), handlerCalls.Load())
		require.NoError(t, peer.Context().Err())
		select {
		case <-peerConnections:
			t.Fatal("oversized datagram replaced the existing peer connection")
		default:
		}
	}
}

func TestConnDiscardsOversizedDatagram(t *testing.T) {
	for _, tt := range []struct {
		name           string
		mtu            uint16
		maxMessageSize uint32
		datagramSize   int
	}{
		{name: "MTU plus one", mtu: 1024, maxMessageSize: 2048, datagramSize: 1025},
		{name: "larger than read buffer", mtu: 1024, maxMessageSize: 2048, datagramSize: 1026},
		{name: "max message size plus one", mtu: 2048, maxMessageSize: 1024, datagramSize: 1025},
	} {
		t.Run(tt.name, func(t *testing.T) {
			peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			require.NoError(t, err)
			defer func() {
				require.NoError(t, peer.Close())
			}()

			packetErrors := make(chan error, 4)
			cc, err := udp.Dial(peer.LocalAddr().String(),
				options.WithMTU(tt.mtu), options.WithMaxMessageSize(tt.maxMessageSize),
				options.WithBlockwise(false, blockwise.SZX1024, time.Second),
				options.WithErrors(func(err error) {
					packetErrors <- err
				}))
			require.NoError(t, err)
			defer func() {
				require.NoError(t, cc.Close())
			}()

			exchange := func() {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				type result struct {
					resp *pool.Message
					err  error
				}
				results := make(chan result, 1)
				go func() {
					resp, errG := cc.Get(ctx, "/a")
					results <- result{resp: resp, err: errG}
				}()

				require.NoError(t, peer.SetReadDeadline(time.Now().Add(2*time.Second)))
				buf := make([]byte, 4096)
				n, addr, errR := peer.ReadFromUDP(buf)
				require.NoError(t, errR)
				req := pool.NewMessage(ctx)
				_, errU := req.UnmarshalWithDecoder(coder.DefaultCoder, buf[:n])
				require.NoError(t, errU)
				resp := pool.NewMessage(ctx)
				resp.SetCode(codes.Content)
				resp.SetType(message.Acknowledgement)
				resp.SetMessageID(req.MessageID())
				resp.SetToken(req.Token())
				resp.SetBody(bytes.NewReader([]byte("valid")))
				data, errM := resp.MarshalWithEncoder(coder.DefaultCoder)
				require.NoError(t, errM)
				_, errW := peer.WriteToUDP(data, addr)
				require.NoError(t, errW)

				got := <-results
				require.NoError(t, got.err)
				body, errB := got.resp.ReadBody()
				require.NoError(t, errB)
				require.Equal(t, []byte("valid"), body)
				cc.ReleaseMessage(got.resp)
			}

			exchange()
			addr, ok := cc.LocalAddr().(*net.UDPAddr)
			require.True(t, ok)
			_, err = peer.WriteToUDP(make([]byte, tt.datagramSize), addr)
			require.NoError(t, err)
			select {
			case packetErr := <-packetErrors:
				require.Error(t, packetErr)
			case <-time.After(2 * time.Second):
				t.Fatal("oversized datagram was not reported")
			}
			require.NoError(t, cc.Context().Err())
			exchange()
			require.NoError(t, cc.Context().Err())
		})
	}
}

func TestConnGetResponseLargerThanMTU(t *testing.T) {
	l, err := coapNet.NewListenUDP("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() {
		errC := l.Close()
		require.NoError(t, errC)
	}()

	payload := make([]byte, 3000)
	r := mux.NewRouter()
	err = r.Handle("/a", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		errS := w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader(payload))
		require.NoError(t, errS)
	}))
	require.NoError(t, err)

	s := udp.NewServer(options.WithMux(r), options.WithBlockwise(false, blockwise.SZX1024, time.Second))
	var wg sync.WaitGroup
	defer func() {
		s.Stop()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errS := s.Serve(l)
		assert.NoError(t, errS)
	}()

	cc, err := udp.Dial(l.LocalAddr().String(), options.WithBlockwise(false, blockwise.SZX1024, time.Second))
	require.NoError(t, err)
	defer func() {
		errC := cc.Close()
		require.NoError(t, errC)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second*2)
	defer cancel()
	// the response does not fit into the MTU sized read buffer, so it must not
	// be delivered truncated as a successful response
	resp, err := cc.Get(ctx, "/a")
	if err == nil {
		body, errR := resp.ReadBody()
		require.NoError(t, errR)
		require.Equal(t, payload, body)
	}
}
