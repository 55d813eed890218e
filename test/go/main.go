// flightcheck is Tierflight's Go test client: a small program on arrow-go's public
// flight and ipc packages that puts every type family arrow-go supports through a
// Tierflight server and reads it back, the way a Go user would.
//
//	flightcheck roundtrip ADDR   every case: put with per-batch app_metadata, checking
//	                             each acknowledgement, then read every endpoint back
//	flightcheck bigbatch ADDR    a 12 MiB batch read back with arrow-go's default 4 MiB
//	                             receive limit (the server runs with maxBatchBytes)
//	flightcheck poll ADDR        cache-fill coordination: reserve a path, long-poll it with
//	                             PollFlightInfo while the owner's put lands, read it back
//	flightcheck standard-actions ADDR   RenewFlightEndpoint and CancelFlightInfo through
//	                             arrow-go's client methods of those names
//	flightcheck auth ADDR        authentication with arrow-go's AuthenticateBasicToken (user
//	                             and password from FLIGHTCHECK_USER, FLIGHTCHECK_PASSWORD):
//	                             refused without it, put and read tenant1, denied tenant2
//
// It prints one JSON document: per case, whether what came back equals what was sent.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type result struct {
	OK        bool   `json:"ok"`
	Batches   int    `json:"batches"`
	Acks      int    `json:"acks"`
	Rows      int64  `json:"rows"`
	Endpoints int    `json:"endpoints"`
	Error     string `json:"error,omitempty"`
}

type testCase struct {
	name    string
	fields  []arrow.Field
	rows    string // JSON array of row objects
	batches int    // split into this many batches (0 rows: a flight with no batch)
}

func f(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

func cases() []testCase {
	dict := func(idx arrow.DataType, val arrow.DataType) arrow.DataType {
		return &arrow.DictionaryType{IndexType: idx, ValueType: val}
	}
	many := make([]string, 0, 2000)
	for i := 0; i < 2000; i++ {
		many = append(many, fmt.Sprintf(`{"i": %d, "s": "row %d"}`, i, i))
	}
	return []testCase{
		{"integers", []arrow.Field{f("i8", arrow.PrimitiveTypes.Int8), f("i16", arrow.PrimitiveTypes.Int16),
			f("i32", arrow.PrimitiveTypes.Int32), f("i64", arrow.PrimitiveTypes.Int64),
			f("u8", arrow.PrimitiveTypes.Uint8), f("u16", arrow.PrimitiveTypes.Uint16),
			f("u32", arrow.PrimitiveTypes.Uint32), f("u64", arrow.PrimitiveTypes.Uint64)},
			`[{"i8": -1, "i16": 300, "i32": -70000, "i64": 9007199254740993, "u8": 255, "u16": 65535, "u32": 4294967295, "u64": 18446744073709551615},
			  {"i8": null, "i16": null, "i32": null, "i64": null, "u8": null, "u16": null, "u32": null, "u64": null},
			  {"i8": 127, "i16": -32768, "i32": 2147483647, "i64": -9223372036854775808, "u8": 0, "u16": 0, "u32": 0, "u64": 0}]`, 2},
		{"floats-and-bool", []arrow.Field{f("f16", arrow.FixedWidthTypes.Float16), f("f32", arrow.PrimitiveTypes.Float32),
			f("f64", arrow.PrimitiveTypes.Float64), f("b", arrow.FixedWidthTypes.Boolean)},
			`[{"f16": 1.5, "f32": -0.25, "f64": 1e300, "b": true}, {"f16": null, "f32": null, "f64": null, "b": null},
			  {"f16": -2, "f32": 3.5, "f64": -1e-300, "b": false}]`, 3},
		{"strings-and-binary", []arrow.Field{f("s", arrow.BinaryTypes.String), f("ls", arrow.BinaryTypes.LargeString),
			f("b", arrow.BinaryTypes.Binary), f("lb", arrow.BinaryTypes.LargeBinary),
			f("fsb", &arrow.FixedSizeBinaryType{ByteWidth: 3})},
			`[{"s": "héllo", "ls": "wörld", "b": "AAEC", "lb": "/w==", "fsb": "YWJj"}, {"s": null, "ls": null, "b": null, "lb": null, "fsb": null},
			  {"s": "", "ls": "", "b": "", "lb": "", "fsb": "eHl6"}]`, 2},
		{"views", []arrow.Field{f("sv", arrow.BinaryTypes.StringView), f("bv", arrow.BinaryTypes.BinaryView)},
			`[{"sv": "short", "bv": "AAEC"}, {"sv": "a string longer than twelve bytes", "bv": null}, {"sv": null, "bv": "AAECAwQFBgcICQoLDA0ODw=="}]`, 2},
		{"temporal", []arrow.Field{f("d32", arrow.FixedWidthTypes.Date32), f("d64", arrow.FixedWidthTypes.Date64),
			f("t32", arrow.FixedWidthTypes.Time32ms), f("t64", arrow.FixedWidthTypes.Time64ns),
			f("ts", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}),
			f("du", arrow.FixedWidthTypes.Duration_ms), f("im", arrow.FixedWidthTypes.MonthInterval),
			f("idt", arrow.FixedWidthTypes.DayTimeInterval), f("imdn", arrow.FixedWidthTypes.MonthDayNanoInterval)},
			`[{"d32": "2024-01-02", "d64": "2024-01-02", "t32": "01:02:03.004", "t64": "01:02:03.000000005", "ts": "2024-01-02T03:04:05.000006Z",
			   "du": 1500, "im": {"months": 3}, "idt": {"days": 1, "milliseconds": 2}, "imdn": {"months": 1, "days": 2, "nanoseconds": 3}},
			  {"d32": null, "d64": null, "t32": null, "t64": null, "ts": null, "du": null, "im": null, "idt": null, "imdn": null}]`, 2},
		{"decimals", []arrow.Field{f("d128", &arrow.Decimal128Type{Precision: 10, Scale: 2}),
			f("d256", &arrow.Decimal256Type{Precision: 40, Scale: 5})},
			`[{"d128": "12345678.90", "d256": "-123456789012345678901234567890.12345"}, {"d128": null, "d256": null}]`, 2},
		{"nested", []arrow.Field{f("l", arrow.ListOf(arrow.PrimitiveTypes.Int32)), f("ll", arrow.LargeListOf(arrow.BinaryTypes.String)),
			f("lv", arrow.ListViewOf(arrow.PrimitiveTypes.Int32)), f("fsl", arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int16)),
			f("st", arrow.StructOf(f("a", arrow.PrimitiveTypes.Int32), f("b", arrow.BinaryTypes.String))),
			f("m", arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64))},
			`[{"l": [1, null, 3], "ll": ["x", "y"], "lv": [4, 5], "fsl": [1, 2], "st": {"a": 1, "b": "one"}, "m": [{"key": "k", "value": 7}]},
			  {"l": null, "ll": null, "lv": null, "fsl": null, "st": null, "m": null},
			  {"l": [], "ll": [], "lv": [], "fsl": [null, 4], "st": {"a": null, "b": null}, "m": []}]`, 3},
		{"unions", []arrow.Field{f("su", arrow.SparseUnionOf([]arrow.Field{f("i", arrow.PrimitiveTypes.Int32), f("s", arrow.BinaryTypes.String)}, []arrow.UnionTypeCode{5, 9})),
			f("du", arrow.DenseUnionOf([]arrow.Field{f("i", arrow.PrimitiveTypes.Int32), f("s", arrow.BinaryTypes.String)}, []arrow.UnionTypeCode{0, 1}))},
			`[{"su": [5, 1], "du": [0, 7]}, {"su": [9, "x"], "du": [1, "y"]}, {"su": [5, null], "du": [1, null]}]`, 2},
		{"run-end-and-null", []arrow.Field{f("ree", arrow.RunEndEncodedOf(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String)),
			f("n", arrow.Null)},
			`[{"ree": "a", "n": null}, {"ree": "a", "n": null}, {"ree": "b", "n": null}, {"ree": null, "n": null}]`, 2},
		{"dictionaries", []arrow.Field{f("d", dict(arrow.PrimitiveTypes.Int16, arrow.BinaryTypes.String)),
			f("d8", dict(arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Int64))},
			`[{"d": "apple", "d8": 10}, {"d": "pear", "d8": 20}, {"d": null, "d8": null}, {"d": "apple", "d8": 30}, {"d": "fig", "d8": 10}, {"d": "kiwi", "d8": 40}]`, 3},
		{"nested-dictionaries", []arrow.Field{f("ld", arrow.ListOf(dict(arrow.PrimitiveTypes.Int8, arrow.BinaryTypes.String))),
			f("sd", arrow.StructOf(f("x", dict(arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String))))},
			`[{"ld": ["a", "b"], "sd": {"x": "p"}}, {"ld": null, "sd": null}, {"ld": ["c"], "sd": {"x": "q"}}, {"ld": ["a"], "sd": {"x": "r"}}]`, 2},
		{"zero-rows", []arrow.Field{f("i", arrow.PrimitiveTypes.Int32)}, `[]`, 0},
		{"empty-batches", []arrow.Field{f("i", arrow.PrimitiveTypes.Int32), f("d", dict(arrow.PrimitiveTypes.Int16, arrow.BinaryTypes.String))},
			`[]`, 3},
		{"many-batches", []arrow.Field{f("i", arrow.PrimitiveTypes.Int64), f("s", arrow.BinaryTypes.String)},
			"[" + strings.Join(many, ",") + "]", 500},
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func connect(addr string, opts ...grpc.DialOption) flight.Client {
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	client, err := flight.NewClientWithMiddleware(addr, nil, nil, opts...)
	must(err)
	return client
}

// batchesOf builds n batches from consecutive slices of the JSON rows, each built on its
// own (so each has its own dictionaries, which the writer sends as deltas or replacements).
func batchesOf(mem memory.Allocator, schema *arrow.Schema, rowsJSON string, n int) ([]arrow.RecordBatch, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(rowsJSON), &rows); err != nil {
		return nil, err
	}
	out := make([]arrow.RecordBatch, 0, n)
	for i := 0; i < n; i++ {
		part, err := json.Marshal(rows[len(rows)*i/n : len(rows)*(i+1)/n])
		if err != nil {
			return nil, err
		}
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(string(part)))
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// put writes the batches under path, checking that each batch gets exactly one
// acknowledgement echoing its metadata before the next is sent.
func put(ctx context.Context, client flight.Client, path string, schema *arrow.Schema, batches []arrow.RecordBatch, meta func(int) string) (int, error) {
	stream, err := client.DoPut(ctx)
	if err != nil {
		return 0, err
	}
	w := flight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithDictionaryDeltas(true))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{path}})
	acks := 0
	for i, b := range batches {
		if err := w.WriteWithAppMetadata(b, []byte(meta(i))); err != nil {
			return acks, fmt.Errorf("write batch %d: %w", i, err)
		}
		ack, err := stream.Recv()
		if err != nil {
			return acks, fmt.Errorf("ack for batch %d: %w", i, err)
		}
		if string(ack.AppMetadata) != meta(i) {
			return acks, fmt.Errorf("ack %d carries %q, want %q", i, ack.AppMetadata, meta(i))
		}
		acks++
	}
	if err := w.Close(); err != nil {
		return acks, err
	}
	if err := stream.CloseSend(); err != nil {
		return acks, err
	}
	for {
		extra, err := stream.Recv()
		if err == io.EOF {
			return acks, nil
		}
		if err != nil {
			return acks, err
		}
		return acks, fmt.Errorf("an acknowledgement too many: %q", extra.AppMetadata)
	}
}

// readAll reads every endpoint of the flight, in order.
func readAll(ctx context.Context, client flight.Client, path string, opts ...grpc.CallOption) ([]arrow.RecordBatch, []string, int, error) {
	return readDescribed(ctx, client, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{path}}, opts...)
}

// readDescribed reads what a descriptor's FlightInfo describes: every endpoint, in order.
func readDescribed(ctx context.Context, client flight.Client, desc *flight.FlightDescriptor, opts ...grpc.CallOption) ([]arrow.RecordBatch, []string, int, error) {
	info, err := client.GetFlightInfo(ctx, desc)
	if err != nil {
		return nil, nil, 0, err
	}
	var recs []arrow.RecordBatch
	var metas []string
	for _, ep := range info.Endpoint {
		stream, err := client.DoGet(ctx, ep.Ticket, opts...)
		if err != nil {
			return nil, nil, 0, err
		}
		r, err := flight.NewRecordReader(stream)
		if err != nil {
			return nil, nil, 0, err
		}
		for r.Next() {
			rec := r.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
			metas = append(metas, string(r.LatestAppMetadata()))
		}
		if err := r.Err(); err != nil && err != io.EOF {
			return nil, nil, 0, err
		}
		r.Release()
	}
	return recs, metas, len(info.Endpoint), nil
}

func roundtrip(ctx context.Context, client flight.Client, tc testCase) result {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema(tc.fields, nil)
	batches, err := batchesOf(mem, schema, tc.rows, tc.batches)
	if err != nil {
		return result{Error: "building the test data: " + err.Error()}
	}
	path := "go/" + tc.name
	meta := func(i int) string { return fmt.Sprintf("%s:%d", tc.name, i) }
	res := result{Batches: len(batches)}
	res.Acks, err = put(ctx, client, path, schema, batches, meta)
	if err != nil {
		res.Error = "put: " + err.Error()
		return res
	}
	got, metas, endpoints, err := readAll(ctx, client, path)
	res.Endpoints = endpoints
	if err != nil {
		res.Error = "get: " + err.Error()
		return res
	}
	if len(got) != len(batches) {
		res.Error = fmt.Sprintf("read %d batches, sent %d", len(got), len(batches))
		return res
	}
	for i := range got {
		res.Rows += got[i].NumRows()
		if !got[i].Schema().Equal(schema) {
			res.Error = fmt.Sprintf("batch %d schema %v, want %v", i, got[i].Schema(), schema)
			return res
		}
		if !array.RecordEqual(got[i], batches[i]) {
			res.Error = fmt.Sprintf("batch %d differs", i)
			return res
		}
		if metas[i] != meta(i) {
			res.Error = fmt.Sprintf("batch %d app_metadata %q, want %q", i, metas[i], meta(i))
			return res
		}
	}
	res.OK = true
	return res
}

func bigbatch(ctx context.Context, addr string) result {
	mem := memory.NewGoAllocator()
	b := array.NewInt64Builder(mem)
	const rows = 12 * 1024 * 1024 / 8
	for i := 0; i < rows; i++ {
		b.Append(int64(i) * 3)
	}
	col := b.NewArray()
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, rows)
	// Sending a 12 MiB message needs a larger send limit; receiving keeps arrow-go's default.
	client := connect(addr, grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	defer client.Close()
	res := result{Batches: 1}
	var err error
	res.Acks, err = put(ctx, client, "go/bigbatch", schema, []arrow.RecordBatch{rec}, func(int) string { return "big" })
	if err != nil {
		res.Error = "put: " + err.Error()
		return res
	}
	got, _, endpoints, err := readAll(ctx, client, "go/bigbatch")
	res.Endpoints = endpoints
	if err != nil {
		res.Error = "get: " + err.Error()
		return res
	}
	want := array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
	table := array.NewTableFromRecords(schema, got)
	res.Rows = table.NumRows()
	if !array.TableEqual(table, want) {
		res.Error = fmt.Sprintf("the table read back (%d rows in %d batches) differs", table.NumRows(), len(got))
		return res
	}
	res.OK = true
	return res
}

// readBack reads the flight at path and compares it with batches; "" when equal.
func readBack(ctx context.Context, client flight.Client, path string, schema *arrow.Schema, batches []arrow.RecordBatch, res *result) string {
	got, _, endpoints, err := readAll(ctx, client, path)
	res.Endpoints = endpoints
	if err != nil {
		return "get: " + err.Error()
	}
	table := array.NewTableFromRecords(schema, got)
	res.Rows = table.NumRows()
	if !array.TableEqual(table, array.NewTableFromRecords(schema, batches)) {
		return "the table read back differs"
	}
	return ""
}

// poll reserves go/poll, long-polls it with PollFlightInfo (x-tierflight-wait-ms) while
// the owner's put lands in the background, then reads the flight the last poll described.
// A poll of a path nobody reserved must be NOT_FOUND.
func poll(ctx context.Context, addr string) result {
	client := connect(addr)
	defer client.Close()
	res := result{Batches: 1}
	const path = "go/poll"
	reserve := func(owner string) (map[string]any, error) {
		body := fmt.Sprintf(`{"path": %q, "owner": %q, "heartbeatSeconds": 30}`, path, owner)
		stream, err := client.DoAction(ctx, &flight.Action{Type: "reserve", Body: []byte(body)})
		if err != nil {
			return nil, err
		}
		r, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		return out, json.Unmarshal(r.Body, &out)
	}
	if got, err := reserve("go-owner"); err != nil || got["status"] != "acquired" {
		res.Error = fmt.Sprintf("reserve: %v %v", got, err)
		return res
	}
	if got, err := reserve("go-other"); err != nil || got["status"] != "held" || got["owner"] != "go-owner" {
		res.Error = fmt.Sprintf("second reserve should be held by go-owner: %v %v", got, err)
		return res
	}
	desc := &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{path}}
	waiting := func(ms string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "x-tierflight-wait-ms", ms)
	}
	// Nothing has landed: a short poll answers with the descriptor to poll again and the reservation's expiry.
	first, err := client.PollFlightInfo(waiting("50"), desc)
	if err != nil {
		res.Error = "first poll: " + err.Error()
		return res
	}
	if first.Info != nil || first.FlightDescriptor == nil || first.ExpirationTime == nil {
		res.Error = fmt.Sprintf("first poll should ask to poll again until the reservation expires: %v", first)
		return res
	}
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{f("i", arrow.PrimitiveTypes.Int64), f("s", arrow.BinaryTypes.String)}, nil)
	batches, err := batchesOf(mem, schema, `[{"i": 1, "s": "a"}, {"i": 2, "s": null}, {"i": 3, "s": "c"}]`, 1)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	putDone := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		owned := metadata.AppendToOutgoingContext(ctx, "x-tierflight-owner", "go-owner")
		_, err := put(owned, client, path, schema, batches, func(int) string { return "ack" })
		putDone <- err
	}()
	next := first.FlightDescriptor
	var info *flight.FlightInfo
	for polls := 0; polls < 20 && info == nil; polls++ {
		p, err := client.PollFlightInfo(waiting("5000"), next)
		if err != nil {
			res.Error = "poll: " + err.Error()
			return res
		}
		info, next = p.Info, p.FlightDescriptor
	}
	if err := <-putDone; err != nil {
		res.Error = "owner's put: " + err.Error()
		return res
	}
	if info == nil {
		res.Error = "the flight never appeared in a poll"
		return res
	}
	if res.Error = readBack(ctx, client, path, schema, batches, &res); res.Error != "" {
		return res
	}
	// The owner's put released the reservation: another owner acquires it at once.
	if got, err := reserve("go-other"); err != nil || got["status"] != "acquired" {
		res.Error = fmt.Sprintf("after the put, the reservation should be free: %v %v", got, err)
		return res
	}
	_, err = client.PollFlightInfo(waiting("50"), &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"go/nobody"}})
	if status.Code(err) != codes.NotFound {
		res.Error = fmt.Sprintf("a poll of an unreserved, absent path should be NOT_FOUND, got %v", err)
		return res
	}
	res.OK = true
	return res
}

// standardActions uses arrow-go's RenewFlightEndpoint and CancelFlightInfo: a renewed
// endpoint expires later and its ticket still reads the version it named after a replace;
// a landed flight is not cancellable; cancelling a reserved path ends a GetFlightInfo
// waiting for it (CANCELLED); an unknown path is NOT_FOUND.
func standardActions(ctx context.Context, addr string) result {
	client := connect(addr)
	defer client.Close()
	res := result{}
	const path = "go/std"
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{f("i", arrow.PrimitiveTypes.Int64)}, nil)
	first, _ := batchesOf(mem, schema, `[{"i": 1}, {"i": 2}, {"i": 3}]`, 1)
	second, _ := batchesOf(mem, schema, `[{"i": 4}]`, 1)
	ack := func(int) string { return "ack" }
	if _, err := put(ctx, client, path, schema, first, ack); err != nil {
		res.Error = "put: " + err.Error()
		return res
	}
	desc := &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{path}}
	info, err := client.GetFlightInfo(ctx, desc)
	if err != nil || len(info.Endpoint) != 1 || info.Endpoint[0].ExpirationTime == nil {
		res.Error = fmt.Sprintf("GetFlightInfo should answer one endpoint with an expiration_time: %v %v", info, err)
		return res
	}
	ep := info.Endpoint[0]
	time.Sleep(1100 * time.Millisecond)
	renewed, err := client.RenewFlightEndpoint(ctx, &flight.RenewFlightEndpointRequest{Endpoint: ep})
	if err != nil {
		res.Error = "RenewFlightEndpoint: " + err.Error()
		return res
	}
	if !renewed.ExpirationTime.AsTime().After(ep.ExpirationTime.AsTime()) || string(renewed.Ticket.Ticket) != string(ep.Ticket.Ticket) {
		res.Error = fmt.Sprintf("the renewed endpoint should keep its ticket and expire later: %v, was %v", renewed, ep)
		return res
	}
	if _, err := put(ctx, client, path, schema, second, ack); err != nil {
		res.Error = "replace: " + err.Error()
		return res
	}
	stream, err := client.DoGet(ctx, renewed.Ticket)
	if err != nil {
		res.Error = "DoGet of the renewed ticket: " + err.Error()
		return res
	}
	reader, err := flight.NewRecordReader(stream)
	if err != nil {
		res.Error = "DoGet of the renewed ticket: " + err.Error()
		return res
	}
	for reader.Next() {
		res.Rows += reader.RecordBatch().NumRows()
	}
	reader.Release()
	if res.Rows != 3 {
		res.Error = fmt.Sprintf("the renewed ticket should read the 3 rows of the version it named, read %d", res.Rows)
		return res
	}
	landed, err := client.CancelFlightInfo(ctx, &flight.CancelFlightInfoRequest{Info: info})
	if err != nil || landed.Status != flight.CancelStatusNotCancellable {
		res.Error = fmt.Sprintf("cancelling a landed flight should be NOT_CANCELLABLE: %v %v", landed, err)
		return res
	}
	waitPath := &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"go/std-wait"}}
	body := `{"path": "go/std-wait", "owner": "go-owner", "heartbeatSeconds": 30}`
	if _, err := client.DoAction(ctx, &flight.Action{Type: "reserve", Body: []byte(body)}); err != nil {
		res.Error = "reserve: " + err.Error()
		return res
	}
	waited := make(chan error, 1)
	started := time.Now()
	go func() {
		_, err := client.GetFlightInfo(metadata.AppendToOutgoingContext(ctx, "x-tierflight-wait-ms", "20000"), waitPath)
		waited <- err
	}()
	time.Sleep(500 * time.Millisecond)
	cancelled, err := client.CancelFlightInfo(ctx, &flight.CancelFlightInfoRequest{Info: &flight.FlightInfo{FlightDescriptor: waitPath}})
	if err != nil || cancelled.Status != flight.CancelStatusCancelled {
		res.Error = fmt.Sprintf("cancelling a reserved path should be CANCELLED: %v %v", cancelled, err)
		return res
	}
	if err := <-waited; status.Code(err) != codes.Canceled || time.Since(started) > 10*time.Second {
		res.Error = fmt.Sprintf("the waiting GetFlightInfo should end CANCELLED at once, got %v after %v", err, time.Since(started))
		return res
	}
	unknown := &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"go/nobody"}}
	_, err = client.CancelFlightInfo(ctx, &flight.CancelFlightInfoRequest{Info: &flight.FlightInfo{FlightDescriptor: unknown}})
	if status.Code(err) != codes.NotFound {
		res.Error = fmt.Sprintf("cancelling an unknown path should be NOT_FOUND, got %v", err)
		return res
	}
	res.OK = true
	return res
}

// authCheck logs in the way arrow-go users do (AuthenticateBasicToken, which sends the
// credentials as unpadded base64) and checks the permission boundary of a tenant1 writer.
func authCheck(ctx context.Context, addr, user, password string) result {
	client := connect(addr)
	defer client.Close()
	res := result{Batches: 1}
	stream, err := client.ListFlights(ctx, &flight.Criteria{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		res.Error = fmt.Sprintf("without a token: want Unauthenticated, got %v", err)
		return res
	}
	authed, err := client.AuthenticateBasicToken(ctx, user, password)
	if err != nil {
		res.Error = "AuthenticateBasicToken: " + err.Error()
		return res
	}
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{f("i", arrow.PrimitiveTypes.Int64)}, nil)
	batches, err := batchesOf(mem, schema, `[{"i": 1}, {"i": 2}, {"i": 3}]`, 1)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if _, err := put(authed, client, "tenant1/go", schema, batches, func(int) string { return "go" }); err != nil {
		res.Error = "put with the token: " + err.Error()
		return res
	}
	if res.Error = readBack(authed, client, "tenant1/go", schema, batches, &res); res.Error != "" {
		return res
	}
	_, err = put(authed, client, "tenant2/go", schema, batches, func(int) string { return "go" })
	if status.Code(err) != codes.PermissionDenied {
		res.Error = fmt.Sprintf("a put to tenant2 should be PermissionDenied, got %v", err)
		return res
	}
	res.OK = true
	return res
}

// dataset puts the 4 partitions of a dataset in parallel, each with x-tierflight-partition,
// and reads it back the way arrow-go readers do: every endpoint of its FlightInfo, in order.
// The batches read must be the partitions' batches, partition by partition.
func dataset(ctx context.Context, addr string) result {
	client := connect(addr)
	defer client.Close()
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{f("part", arrow.PrimitiveTypes.Int32), f("s", arrow.BinaryTypes.String)}, nil)
	const count = 4
	parts := make([][]arrow.RecordBatch, count)
	for i := range parts {
		rows := make([]string, 0, 300)
		for r := 0; r < 300; r++ {
			rows = append(rows, fmt.Sprintf(`{"part": %d, "s": "p%d-r%d"}`, i, i, r))
		}
		batches, err := batchesOf(mem, schema, "["+strings.Join(rows, ",")+"]", 2)
		if err != nil {
			return result{Error: "building the test data: " + err.Error()}
		}
		parts[i] = batches
	}
	errs := make(chan error, count)
	for i := 0; i < count; i++ {
		go func(i int) {
			pctx := metadata.AppendToOutgoingContext(ctx, "x-tierflight-partition", fmt.Sprintf("%d/%d", i, count))
			_, err := put(pctx, client, "go/dataset", schema, parts[i], func(j int) string { return fmt.Sprintf("p%d-b%d", i, j) })
			errs <- err
		}(i)
	}
	for i := 0; i < count; i++ {
		if err := <-errs; err != nil {
			return result{Error: "put: " + err.Error()}
		}
	}
	got, _, endpoints, err := readAll(ctx, client, "go/dataset")
	res := result{Endpoints: endpoints}
	if err != nil {
		res.Error = "get: " + err.Error()
		return res
	}
	var want []arrow.RecordBatch
	for _, p := range parts {
		want = append(want, p...)
	}
	res.Batches = len(got)
	if len(got) != len(want) {
		res.Error = fmt.Sprintf("read %d batches, want %d", len(got), len(want))
		return res
	}
	for i := range got {
		res.Rows += got[i].NumRows()
		if !array.RecordEqual(got[i], want[i]) {
			res.Error = fmt.Sprintf("batch %d differs", i)
			return res
		}
	}
	res.OK = true
	return res
}

// projection puts a table of five columns in three batches and reads columns l, a and st
// (in that order) back through a command descriptor {"path", "columns"} the way arrow-go
// readers read a FlightInfo: every endpoint. Each batch must equal the stored batch's
// columns l, a and st, and the schema must name just those.
func projection(ctx context.Context, addr string) result {
	client := connect(addr)
	defer client.Close()
	mem := memory.NewGoAllocator()
	st := arrow.StructOf(f("x", arrow.PrimitiveTypes.Float64), f("y", arrow.BinaryTypes.String))
	schema := arrow.NewSchema([]arrow.Field{
		f("a", arrow.PrimitiveTypes.Int64), f("s", arrow.BinaryTypes.String), f("l", arrow.ListOf(arrow.PrimitiveTypes.Int32)),
		f("st", st), f("b", arrow.FixedWidthTypes.Boolean),
	}, nil)
	rows := make([]string, 0, 90)
	for r := 0; r < 90; r++ {
		rows = append(rows, fmt.Sprintf(`{"a": %d, "s": "row-%d", "l": [%d, %d], "st": {"x": %d.5, "y": "y%d"}, "b": %t}`, r, r, r, r+1, r, r, r%2 == 0))
	}
	batches, err := batchesOf(mem, schema, "["+strings.Join(rows, ",")+"]", 3)
	if err != nil {
		return result{Error: "building the test data: " + err.Error()}
	}
	if _, err := put(ctx, client, "go/projection", schema, batches, func(j int) string { return fmt.Sprintf("b%d", j) }); err != nil {
		return result{Error: "put: " + err.Error()}
	}
	picks := []int{2, 0, 3}
	cmd, _ := json.Marshal(map[string]any{"path": "go/projection", "columns": []string{"l", "a", "st"}})
	got, _, endpoints, err := readDescribed(ctx, client, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	res := result{Endpoints: endpoints}
	if err != nil {
		res.Error = "get: " + err.Error()
		return res
	}
	res.Batches = len(got)
	if len(got) != len(batches) {
		res.Error = fmt.Sprintf("read %d batches, want %d", len(got), len(batches))
		return res
	}
	for i, b := range batches {
		fields := make([]arrow.Field, len(picks))
		cols := make([]arrow.Array, len(picks))
		for k, p := range picks {
			fields[k] = schema.Field(p)
			cols[k] = b.Column(p)
		}
		want := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, b.NumRows())
		res.Rows += got[i].NumRows()
		if !got[i].Schema().Equal(want.Schema()) || !array.RecordEqual(got[i], want) {
			res.Error = fmt.Sprintf("batch %d differs: got %v", i, got[i].Schema())
			return res
		}
	}
	res.OK = true
	return res
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: flightcheck roundtrip|bigbatch|poll HOST:PORT")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr := strings.TrimPrefix(strings.TrimPrefix(os.Args[2], "grpc+tcp://"), "grpc://")
	out := map[string]result{}
	switch os.Args[1] {
	case "roundtrip":
		client := connect(addr)
		defer client.Close()
		for _, tc := range cases() {
			out[tc.name] = roundtrip(ctx, client, tc)
		}
	case "bigbatch":
		out["bigbatch"] = bigbatch(ctx, addr)
	case "poll":
		out["poll"] = poll(ctx, addr)
	case "standard-actions":
		out["standard-actions"] = standardActions(ctx, addr)
	case "dataset":
		out["dataset"] = dataset(ctx, addr)
	case "projection":
		out["projection"] = projection(ctx, addr)
	case "auth":
		out["auth"] = authCheck(ctx, addr, os.Getenv("FLIGHTCHECK_USER"), os.Getenv("FLIGHTCHECK_PASSWORD"))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
	must(json.NewEncoder(os.Stdout).Encode(out))
}
