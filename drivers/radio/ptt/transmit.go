package ptt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/skyfleet/skyfleet/internal/clock"
)

// Clock is time as a Transmitter sees it; tests give it their own.
type Clock = clock.Clock

// Params are the channel-access parameters of a transmitter (the KISS ones,
// package kiss, for the built-in modem).
type Params struct {
	// SlotTime is the wait between two looks at a busy or unlucky channel;
	// 0 means 100 ms.
	SlotTime time.Duration
	// Persistence is p: the chance to transmit in a slot the channel is
	// clear, in (0, 1]; 0 means 0.25 (KISS's default P of 63).
	Persistence float64
	// FullDuplex transmits without carrier sense.
	FullDuplex bool
	// MaxWait bounds the wait for a clear channel (ErrBusy after it); 0
	// means 30 s. MaxKeyed bounds the time keyed, as a radio's time-out
	// timer does: play's context ends then; 0 means 60 s.
	MaxWait, MaxKeyed time.Duration
}

// ErrBusy is a channel that stayed busy for Params.MaxWait.
var ErrBusy = errors.New("ptt: the channel stayed busy")

// Transmitter sends transmissions on a shared channel: p-persistent CSMA
// (AX.25 2.2 §6.4.2's channel access, the KISS parameters), then keyed for the
// audio only.
type Transmitter struct {
	Keyer Keyer
	// Busy reports carrier: the demodulator hears a signal. nil: never.
	Busy   func() bool
	Params Params
	// Clock and Rand are the transmitter's time and its draws in [0, 1);
	// nil means real time and math/rand/v2.
	Clock Clock
	Rand  func() float64
}

// Transmit waits for its turn on the channel, keys, calls play, and unkeys
// when play returns, whatever it returns. play sends the transmission's audio
// (TXDELAY flags, the frames, TXTAIL flags: package afsk's Modulator makes
// them) and must return once the audio has left the sound card; its context
// ends at Params.MaxKeyed. It returns how long the transmitter was keyed.
// Errors: ErrBusy, ctx's, the keyer's, play's.
func (t *Transmitter) Transmit(ctx context.Context, play func(context.Context) error) (time.Duration, error) {
	clk := t.Clock
	if clk == nil {
		clk = clock.Real
	}
	draw := t.Rand
	if draw == nil {
		draw = rand.Float64
	}
	p := t.Params
	if p.SlotTime <= 0 {
		p.SlotTime = 100 * time.Millisecond
	}
	if p.Persistence <= 0 || p.Persistence > 1 {
		p.Persistence = 0.25
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 30 * time.Second
	}
	if p.MaxKeyed <= 0 {
		p.MaxKeyed = 60 * time.Second
	}
	start := clk.Now()
	for !p.FullDuplex {
		busy := t.Busy != nil && t.Busy()
		if !busy && draw() < p.Persistence {
			break
		}
		if clk.Now().Sub(start) >= p.MaxWait {
			return 0, fmt.Errorf("%w for %v", ErrBusy, p.MaxWait)
		}
		if err := clk.Sleep(ctx, p.SlotTime); err != nil {
			return 0, err
		}
	}
	if err := t.Keyer.Key(true); err != nil {
		t.Keyer.Key(false) // a half-done keying must not stay keyed
		return 0, err
	}
	keyed := clk.Now()
	pctx, cancel := context.WithTimeout(ctx, p.MaxKeyed)
	err := play(pctx)
	cancel()
	uerr := t.Keyer.Key(false)
	return clk.Now().Sub(keyed), errors.Join(err, uerr)
}
