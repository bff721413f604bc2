package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
)

// ErrDamaged is wrapped by the errors of Open, CheckFile and Restore when a
// database file is damaged (truncated, overwritten, not a database).
var ErrDamaged = errors.New("the database file is damaged")

// Remedy is what to do about a damaged or empty database file.
const Remedy = "restore it from a backup: stop the bot, then run `bot restore BACKUP` (it keeps the damaged file aside)"

// damaged is the error for a damaged file: it names the file, the problem
// and the remedy.
func damaged(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; %s", ErrDamaged, path, fmt.Sprintf(format, args...), Remedy)
}

// The bbolt file format (go.etcd.io/bbolt v1.5.0, internal/common: page.go,
// meta.go, bucket.go, types.go), in the machine's byte order (bbolt writes
// its structs as they are in memory; every platform Go supports for this
// bot is little-endian).
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	pageHeaderSize     = 16 // id u64, flags u16, count u16, overflow u32
	elementSize        = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize   = 16 // root pgid u64, sequence u64
	metaChecksumOffset = 56 // the checksum is FNV-64a of the meta's bytes before it
	metaSize           = 64
	flagBranch         = 0x01
	flagLeaf           = 0x02
	flagMeta           = 0x04
	flagFreelist       = 0x10
	leafFlagBucket     = 0x01
	noFreelist         = ^uint64(0)
	maxVerifyDepth     = 64 // B+tree and nested-bucket depth; a real file is far shallower
)

var le = binary.LittleEndian

// verifyFile checks, with bounds-checked reads of a read-only mapping,
// that bbolt can open the file and walk it without tripping over its own
// assertions: bbolt panics (in goroutines of its own, which no recover can
// catch) on a truncated file or an overwritten page. It follows what bbolt
// reads: the newest valid meta page, the freelist page if there is one, and
// every page reachable from the root bucket, nested buckets included. The
// caller holds the file lock, so no writer changes it meanwhile. An empty
// file is an error too: bbolt would silently make a new database of it.
func verifyFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening database %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: %s is empty (0 bytes): it was truncated or never written, and the bot does not start afresh "+
			"with no data silently; %s, or delete the file to start with no data on purpose",
			ErrDamaged, path, Remedy)
	}
	return verifyPages(f, fi.Size(), path, 0)
}

// verifyPages walks the pages of the file f (size bytes) reachable from
// its newest valid meta page or, if txid is not 0, from the meta page of
// transaction txid (Store.Check: while that read transaction is open, bbolt
// changes none of them, whatever else writers do).
func verifyPages(f *os.File, size int64, path string, txid uint64) (err error) {
	data, unmap, err := mapFile(f, size)
	if err != nil {
		return fmt.Errorf("reading database %s: %w", path, err)
	}
	defer unmap()
	// Reads stay within size, but the file could still shrink under the
	// mapping (another process ignoring the lock): a fault is then a panic
	// here, recovered as damage, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = damaged(path, "reading it failed (%v)", p)
		}
	}()
	m, err := readMeta(data, txid)
	if errors.Is(err, errMetaGone) {
		return err
	} else if err != nil {
		return damaged(path, "%v", err)
	}
	// A file shorter than its high-water mark lost only free pages if
	// every reachable page is still there (bbolt grows the file again when
	// it reuses them): that is checked page by page below, so a truncation
	// is damage exactly when it cut data.
	if m.pgid > uint64(size)/uint64(m.pageSize)+1<<20 {
		return damaged(path, "its meta page claims %d pages, far more than its %d bytes hold", m.pgid, size)
	}
	v := &verifier{data: data, size: size, pageSize: int64(m.pageSize), high: m.pgid, seen: make([]uint64, m.pgid/64+1)}
	if m.freelist != noFreelist && txid == 0 {
		if err := v.freelist(m.freelist); err != nil {
			return damaged(path, "%v", err)
		}
	}
	if err := v.page(m.root, 0); err != nil {
		return damaged(path, "%v", err)
	}
	return nil
}

// errMetaGone: the meta page of the transaction asked for was already
// rewritten by later commits; nothing can be said about its pages.
var errMetaGone = errors.New("the transaction's meta page was rewritten")

type meta struct {
	pageSize             uint32
	root, freelist, pgid uint64
	txid                 uint64
}

// readMeta returns the meta page bbolt would use: of the two, the valid one
// with the higher transaction id; or, if txid is not 0, the one of that
// transaction (errMetaGone if neither is).
func readMeta(data []byte, txid uint64) (meta, error) {
	size := int64(len(data))
	var best meta
	found := false
	var last error
	for i := range 2 {
		// Page 0 is at 0; page 1 at the page size page 0 names, or at the
		// OS page size when page 0 is unreadable (as bbolt does).
		off := int64(0)
		if i == 1 {
			off = int64(os.Getpagesize())
			if found {
				off = int64(best.pageSize)
			}
		}
		if off+pageHeaderSize+metaSize > size {
			last = fmt.Errorf("meta page %d is missing (the file is %d bytes: truncated?)", i, size)
			continue
		}
		m, err := parseMeta(data[off : off+pageHeaderSize+metaSize])
		if err != nil {
			last = fmt.Errorf("meta page %d: %v", i, err)
			continue
		}
		if txid != 0 && m.txid == txid {
			return m, nil
		}
		if !found || m.txid > best.txid {
			best, found = m, true
		}
	}
	if txid != 0 && found {
		return meta{}, errMetaGone
	}
	if !found {
		if size < 2*int64(os.Getpagesize()) {
			return meta{}, fmt.Errorf("it is only %d bytes long, too short for a database (truncated?)", size)
		}
		return meta{}, fmt.Errorf("not a bbolt database, or both of its meta pages are overwritten (%v)", last)
	}
	return best, nil
}

func parseMeta(buf []byte) (meta, error) {
	if le.Uint16(buf[8:]) != flagMeta {
		return meta{}, errors.New("not a meta page")
	}
	b := buf[pageHeaderSize:]
	if le.Uint32(b[0:]) != boltMagic {
		return meta{}, errors.New("no bbolt marker")
	}
	if le.Uint32(b[4:]) != boltVersion {
		return meta{}, fmt.Errorf("bbolt format version %d, want %d", le.Uint32(b[4:]), boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:metaChecksumOffset])
	if h.Sum64() != le.Uint64(b[metaChecksumOffset:]) {
		return meta{}, errors.New("checksum mismatch")
	}
	m := meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return meta{}, fmt.Errorf("page size %d is impossible", m.pageSize)
	}
	return m, nil
}

type verifier struct {
	data     []byte // the file, mapped read-only
	size     int64
	pageSize int64
	high     uint64   // pages below this id are in use or free
	seen     []uint64 // a bit per page below high: reached already
}

// mark records that page id was reached and reports whether it had been.
func (v *verifier) mark(id uint64) bool {
	w, bit := id/64, uint64(1)<<(id%64)
	was := v.seen[w]&bit != 0
	v.seen[w] |= bit
	return was
}

// read returns page id with its overflow pages, after checking that it lies
// within the file and the high-water mark and says it is page id.
func (v *verifier) read(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= v.high {
		return nil, fmt.Errorf("%s refers to page %d, outside the pages in use (2 to %d)", what, id, v.high-1)
	}
	if v.mark(id) {
		return nil, fmt.Errorf("page %d is referred to twice", id)
	}
	off := int64(id) * v.pageSize
	if off+v.pageSize > v.size {
		return nil, fmt.Errorf("page %d is past the end of the file (truncated?)", id)
	}
	hdr := v.data[off : off+pageHeaderSize]
	if got := le.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d is overwritten (it says it is page %d)", id, got)
	}
	n := uint64(le.Uint32(hdr[12:])) + 1
	if id+n > v.high || int64(id+n)*v.pageSize > v.size {
		return nil, fmt.Errorf("page %d runs past the end of the file (truncated?)", id)
	}
	for i := uint64(1); i < n; i++ {
		v.mark(id + i)
	}
	return v.data[off : off+int64(n)*v.pageSize], nil
}

func (v *verifier) freelist(id uint64) error {
	p, err := v.read(id, "the freelist")
	if err != nil {
		return err
	}
	if flags := le.Uint16(p[8:]); flags != flagFreelist {
		return fmt.Errorf("the freelist page %d is overwritten (flags %#x)", id, flags)
	}
	start, count := uint64(pageHeaderSize), uint64(le.Uint16(p[10:]))
	if count == 0xFFFF {
		count, start = le.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > (uint64(len(p))-start)/8 {
		return fmt.Errorf("the freelist page %d is overwritten (it claims %d entries)", id, count)
	}
	for i := range count {
		if free := le.Uint64(p[start+8*i:]); free < 2 || free >= v.high {
			return fmt.Errorf("the freelist page %d is overwritten (it lists page %d)", id, free)
		}
	}
	return nil
}

// page checks a branch or leaf page and everything below it.
func (v *verifier) page(id uint64, depth int) error {
	p, err := v.read(id, "a bucket")
	if err != nil {
		return err
	}
	return v.node(p, id, depth)
}

// node checks the elements of a branch or leaf node held in p (a page, or
// an inline bucket's value).
func (v *verifier) node(p []byte, id uint64, depth int) error {
	if depth > maxVerifyDepth {
		return fmt.Errorf("page %d is nested impossibly deep", id)
	}
	if len(p) < pageHeaderSize {
		return fmt.Errorf("an inline bucket in page %d is cut short", id)
	}
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return fmt.Errorf("page %d is overwritten (flags %#x where a branch or leaf page belongs)", id, flags)
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Errorf("page %d is overwritten (it claims %d elements)", id, count)
	}
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := p[at : at+elementSize]
		if flags == flagBranch {
			pos, ksize, child := int64(le.Uint32(e[0:])), int64(le.Uint32(e[4:])), le.Uint64(e[8:])
			if int64(at)+pos+ksize > int64(len(p)) {
				return fmt.Errorf("page %d is overwritten (key %d runs past it)", id, i)
			}
			if err := v.page(child, depth+1); err != nil {
				return err
			}
			continue
		}
		eflags, pos, ksize, vsize := le.Uint32(e[0:]), int64(le.Uint32(e[4:])), int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		kstart := int64(at) + pos
		if kstart+ksize+vsize > int64(len(p)) {
			return fmt.Errorf("page %d is overwritten (entry %d runs past it)", id, i)
		}
		if eflags&leafFlagBucket == 0 {
			continue
		}
		val := p[kstart+ksize : kstart+ksize+vsize]
		if len(val) < bucketHeaderSize {
			return fmt.Errorf("page %d is overwritten (bucket %d has no header)", id, i)
		}
		if root := le.Uint64(val); root != 0 {
			if err := v.page(root, depth+1); err != nil {
				return err
			}
		} else if err := v.node(val[bucketHeaderSize:], id, depth+1); err != nil {
			return err
		}
	}
	return nil
}
