// go_seed is the system the pipeline replaces, rebuilt for the benchmark: a sarama consumer group reading the
// topic from the oldest offset, JSON decoding and the same validation rules, and one counter UPDATE per message
// through gocql, each in its own goroutine (bounded, so that it does not fall over). It stops once every
// partition reaches the end offset it had at start, and prints its figures as one JSON object.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
)

var isoDay = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

type increment struct {
	date   time.Time
	siteID int32
	views  int64
	clicks int64
}

// jsonInt accepts a JSON integer only: no floats, exponents, strings, booleans or null.
func jsonInt(raw json.RawMessage, min, max int64) (int64, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || strings.ContainsAny(text, ".eE\"") || text == "null" || text == "true" || text == "false" {
		return 0, errors.New("not a JSON integer")
	}
	var number json.Number
	if err := json.Unmarshal(raw, &number); err != nil {
		return 0, errors.New("not a JSON integer")
	}
	value, err := number.Int64()
	if err != nil || value < min || value > max {
		return 0, fmt.Errorf("out of range %d..%d", min, max)
	}
	return value, nil
}

func validate(value []byte) (increment, error) {
	var fields map[string]json.RawMessage
	decoder := json.NewDecoder(bytes.NewReader(value))
	if err := decoder.Decode(&fields); err != nil || fields == nil {
		return increment{}, errors.New("not a JSON object")
	}
	var result increment
	rawDate, ok := fields["date"]
	if !ok {
		return result, errors.New("date: missing")
	}
	var day string
	if err := json.Unmarshal(rawDate, &day); err != nil || !isoDay.MatchString(day) {
		return result, errors.New("date: not YYYY-MM-DD")
	}
	parsed, err := time.Parse("2006-01-02", day)
	if err != nil {
		return result, errors.New("date: not a calendar date")
	}
	result.date = parsed
	rawSite, ok := fields["site_id"]
	if !ok {
		return result, errors.New("site_id: missing")
	}
	site, err := jsonInt(rawSite, 0, math.MaxInt32)
	if err != nil {
		return result, fmt.Errorf("site_id: %w", err)
	}
	result.siteID = int32(site)
	for name, target := range map[string]*int64{"views": &result.views, "clicks": &result.clicks} {
		if raw, present := fields[name]; present {
			n, err := jsonInt(raw, 0, math.MaxInt64)
			if err != nil {
				return result, fmt.Errorf("%s: %w", name, err)
			}
			*target = n
		}
	}
	return result, nil
}

type handler struct {
	session  *gocql.Session
	table    string
	ends     map[int32]int64
	inFlight chan struct{}
	pending  sync.WaitGroup
	read     atomic.Int64
	invalid  atomic.Int64
	writes   atomic.Int64
	failed   atomic.Int64
	done     chan struct{}
	finished sync.Once
	reached  sync.Map
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	end := h.ends[claim.Partition()]
	if claim.InitialOffset() >= end {
		h.markReached(claim.Partition())
	}
	for message := range claim.Messages() {
		h.read.Add(1)
		inc, err := validate(message.Value)
		if err != nil {
			h.invalid.Add(1)
		} else {
			h.inFlight <- struct{}{}
			h.pending.Add(1)
			go func(inc increment) {
				defer func() { <-h.inFlight; h.pending.Done() }()
				query := fmt.Sprintf("UPDATE %s SET views = views + ?, clicks = clicks + ? WHERE date = ? AND site_id = ?", h.table)
				if err := h.session.Query(query, inc.views, inc.clicks, inc.date, inc.siteID).Exec(); err != nil {
					h.failed.Add(1)
					log.Printf("update failed: %v", err)
					return
				}
				h.writes.Add(1)
			}(inc)
		}
		session.MarkMessage(message, "")
		if message.Offset+1 >= end {
			h.markReached(claim.Partition())
		}
	}
	return nil
}

func (h *handler) markReached(partition int32) {
	h.reached.Store(partition, true)
	count := 0
	h.reached.Range(func(_, _ any) bool { count++; return true })
	if count == len(h.ends) {
		h.finished.Do(func() { close(h.done) })
	}
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers")
	topic := flag.String("topic", "", "topic to drain")
	group := flag.String("group", "go-seed", "consumer group")
	hosts := flag.String("cassandra_hosts", "127.0.0.1", "Cassandra contact points")
	port := flag.Int("cassandra_port", 9042, "Cassandra port")
	keyspace := flag.String("keyspace", "", "keyspace")
	table := flag.String("table", "site_stats", "counter table")
	concurrency := flag.Int("max_in_flight", 256, "most UPDATE goroutines at once")
	flag.Parse()
	if *topic == "" || *keyspace == "" {
		log.Fatal("--topic and --keyspace are required")
	}

	config := sarama.NewConfig()
	config.Version = sarama.V3_6_0_0
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Return.Errors = false
	client, err := sarama.NewClient(strings.Split(*brokers, ","), config)
	if err != nil {
		log.Fatalf("kafka: %v", err)
	}
	partitions, err := client.Partitions(*topic)
	if err != nil {
		log.Fatalf("kafka: %v", err)
	}
	ends := map[int32]int64{}
	for _, p := range partitions {
		if ends[p], err = client.GetOffset(*topic, p, sarama.OffsetNewest); err != nil {
			log.Fatalf("kafka: %v", err)
		}
	}

	cluster := gocql.NewCluster(strings.Split(*hosts, ",")...)
	cluster.Port = *port
	cluster.Keyspace = *keyspace
	cluster.Consistency = gocql.One
	cluster.Timeout = 30 * time.Second
	cluster.NumConns = 2
	session, err := cluster.CreateSession()
	if err != nil {
		log.Fatalf("cassandra: %v", err)
	}
	defer session.Close()

	consumerGroup, err := sarama.NewConsumerGroupFromClient(*group, client)
	if err != nil {
		log.Fatalf("kafka: %v", err)
	}
	h := &handler{session: session, table: *table, ends: ends, inFlight: make(chan struct{}, *concurrency),
		done: make(chan struct{})}
	started := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := consumerGroup.Consume(ctx, []string{*topic}, h); err != nil && ctx.Err() == nil {
				log.Printf("consume: %v", err)
			}
		}
	}()
	<-h.done
	cancel()
	h.pending.Wait()
	elapsed := time.Since(started).Seconds()
	consumerGroup.Close()
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"messages": h.read.Load(), "invalid": h.invalid.Load(), "cassandra_writes": h.writes.Load(),
		"failed_writes": h.failed.Load(), "elapsed_s": elapsed, "msgs_per_s": float64(h.read.Load()) / elapsed,
	})
}
