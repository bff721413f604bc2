package runbookflow

import (
	"context"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/runbook"
)

// requests keeps the engine's waiting requests in the incident store
// (runbook.RequestStore), so they survive a restart and every replica of
// the bot sees the same ones. Swap is one store transaction reading and
// writing the request, which both stores make a compare-and-set.
type requests struct{ store incident.Store }

var _ runbook.RequestStore = requests{}

func toStored(r *incident.RunbookRequest) *runbook.StoredRequest {
	return &runbook.StoredRequest{
		ID: r.ID, RunbookID: r.Runbook, State: runbook.State(r.State), RequesterID: r.Requester,
		ChannelID: r.ChannelID, IncidentID: r.Incident, Created: r.Created, Deadline: r.Deadline,
		Ended: r.Ended, Rev: r.Rev, Body: r.Body,
	}
}

func fromStored(r *runbook.StoredRequest) incident.RunbookRequest {
	return incident.RunbookRequest{
		ID: r.ID, Runbook: r.RunbookID, State: string(r.State), Requester: r.RequesterID,
		ChannelID: r.ChannelID, Incident: r.IncidentID, Created: r.Created, Deadline: r.Deadline,
		Ended: r.Ended, Rev: r.Rev, Body: r.Body,
	}
}

func (q requests) Load(ctx context.Context, id string) (*runbook.StoredRequest, bool, error) {
	var out *runbook.StoredRequest
	err := q.store.View(ctx, func(tx incident.Tx) error {
		r, err := tx.RunbookRequest(id)
		if err == nil {
			out = toStored(r)
		}
		return err
	})
	if incident.ErrorCode(err) == incident.ENOTFOUND {
		return nil, false, nil
	}
	return out, err == nil, err
}

func (q requests) Swap(ctx context.Context, r *runbook.StoredRequest) (bool, error) {
	var rev int64
	err := q.store.Update(ctx, func(tx incident.Tx) error {
		rec := fromStored(r) // afresh: the store may run this again
		rev = 0
		if err := tx.PutRunbookRequest(&rec); err != nil {
			return err
		}
		rev = rec.Rev
		return nil
	})
	switch {
	case incident.ErrorCode(err) == incident.ECONFLICT:
		return false, nil
	case err != nil:
		return false, err
	}
	r.Rev = rev
	return true, nil
}

func (q requests) List(ctx context.Context) ([]runbook.StoredRequest, error) {
	var out []runbook.StoredRequest
	err := q.store.View(ctx, func(tx incident.Tx) error {
		all, err := tx.RunbookRequests()
		out = out[:0]
		for i := range all {
			out = append(out, *toStored(&all[i]))
		}
		return err
	})
	return out, err
}

func (q requests) Delete(ctx context.Context, id string) error {
	return q.store.Update(ctx, func(tx incident.Tx) error { return tx.DeleteRunbookRequest(id) })
}
