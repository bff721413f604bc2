package etcdstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Large values (a stored webhook body of up to the intakes' own 4 MiB, a
// runbook run's output, a long postmortem) do not fit in one etcd request:
// etcd refuses a request over --max-request-bytes, 1.5 MiB by default
// (embed.DefaultMaxRequestBytes in go.etcd.io/etcd/server/v3/embed/config.go;
// https://etcd.io/docs/v3.6/dev-guide/limit/). Such a value is stored as a
// blob: its chunks are written first, each in a request of its own and on a
// short staging lease, under blob/<id>/<n>; the transaction then stores a
// reference in the value's place and, in the same commit, detaches every
// chunk from the lease (a put with ignore_value and no lease keeps the
// value and drops the lease: put in server/v3/etcdserver/txn/put.go and
// storeTxnWrite.put in server/v3/storage/mvcc/kvstore_txn.go). A
// transaction that never commits (it failed, or lost to another replica and
// ran again with new chunks) leaves chunks that etcd deletes when the
// staging lease expires, so nothing is orphaned for good.
const (
	pfxBlob = "blob/"
	// blobInline is the largest value stored in place.
	blobInline = 256 << 10
	// blobChunk is the size of a chunk: one request each, well under the
	// default request limit.
	blobChunk = 512 << 10
	// blobStagingTTL (seconds) bounds how long unreferenced chunks live.
	blobStagingTTL = 600
	// blobMarker starts a reference; stored JSON, text and the hex-stamped
	// values never start with a NUL byte.
	blobMarker = "\x00blob:"
)

type blobRef struct {
	id     string
	chunks int
	size   int
}

func parseBlobRef(v []byte) (blobRef, bool, error) {
	if !bytes.HasPrefix(v, []byte(blobMarker)) {
		return blobRef{}, false, nil
	}
	parts := strings.Split(string(v[len(blobMarker):]), ":")
	if len(parts) != 3 {
		return blobRef{}, true, fmt.Errorf("damaged blob reference %q", v)
	}
	chunks, err1 := strconv.Atoi(parts[1])
	size, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || parts[0] == "" {
		return blobRef{}, true, fmt.Errorf("damaged blob reference %q", v)
	}
	return blobRef{id: parts[0], chunks: chunks, size: size}, true, nil
}

func (r blobRef) marker() []byte {
	return []byte(blobMarker + r.id + ":" + strconv.Itoa(r.chunks) + ":" + strconv.Itoa(r.size))
}

func (r blobRef) prefix() string { return pfxBlob + r.id + "/" }

// putLarge writes value at key, as a blob when it is large. replacing says
// key may hold a blob already, which is then deleted with it.
func (t *tx) putLarge(key string, value []byte, replacing bool) error {
	if replacing {
		if err := t.delBlobAt(key); err != nil {
			return err
		}
	}
	if len(value) <= blobInline {
		t.put(key, value)
		return nil
	}
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	ref := blobRef{id: hex.EncodeToString(id[:]), size: len(value)}
	// Each request is bounded by rpcCtx: this runs with the writer slot
	// held, often under a context without a deadline.
	gctx, cancel := t.s.rpcCtx(t.ctx)
	lease, err := t.s.cli.Grant(gctx, blobStagingTTL)
	cancel()
	if err != nil {
		return fmt.Errorf("staging a large value in etcd: %w", err)
	}
	for off := 0; off < len(value); off += blobChunk {
		chunk := value[off:min(off+blobChunk, len(value))]
		k := t.s.p + ref.prefix() + fmt.Sprintf("%06x", ref.chunks)
		pctx, cancel := t.s.rpcCtx(t.ctx)
		_, err := t.s.cli.Put(pctx, k, string(chunk), clientv3.WithLease(lease.ID))
		cancel()
		if err != nil {
			return fmt.Errorf("staging a large value in etcd: %w", err)
		}
		t.writes[k] = &write{keep: true}
		ref.chunks++
	}
	t.put(key, ref.marker())
	return nil
}

// value returns raw, or the blob it refers to, reassembled. Chunks are
// read as of the snapshot, or, for a blob this transaction staged, as
// staged (a blob's chunks never change once written).
func (t *tx) value(raw []byte) ([]byte, error) {
	ref, ok, err := parseBlobRef(raw)
	if !ok || err != nil {
		return raw, err
	}
	for _, rev := range []int64{t.rev, 0} {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		ctx, cancel := t.s.rpcCtx(t.ctx)
		resp, err := t.s.cli.Get(ctx, t.s.p+ref.prefix(), opts...)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading etcd: %w", err)
		}
		if len(resp.Kvs) != ref.chunks {
			continue
		}
		out := make([]byte, 0, ref.size)
		for _, kv := range resp.Kvs { // in key order: chunk order
			out = append(out, kv.Value...)
		}
		if len(out) == ref.size {
			return out, nil
		}
	}
	return nil, fmt.Errorf("blob %s is damaged or missing (want %d chunks, %d bytes)", ref.id, ref.chunks, ref.size)
}

// getValue is get with blobs reassembled.
func (t *tx) getValue(key string) ([]byte, bool, error) {
	raw, ok, err := t.get(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	v, err := t.value(raw)
	return v, true, err
}

// delBlobAt deletes the blob that key's current value refers to, if any.
func (t *tx) delBlobAt(key string) error {
	raw, ok, err := t.get(key)
	if err != nil || !ok {
		return err
	}
	return t.delBlob(raw)
}

// delBlob deletes the blob raw refers to, if it is a reference.
func (t *tx) delBlob(raw []byte) error {
	ref, ok, err := parseBlobRef(raw)
	if !ok || err != nil {
		return err
	}
	p := t.s.p + ref.prefix()
	t.writes[p] = &write{deleted: true, rangeEnd: p + "\xff"}
	return nil
}

// delLarge deletes key and the blob its value refers to.
func (t *tx) delLarge(key string) error {
	if err := t.delBlobAt(key); err != nil {
		return err
	}
	t.del(key)
	return nil
}
