package marketo

import "context"

// This file is the contract between the client and the sync engine. The
// engine declares the interface it needs (internal/sync) in terms of these
// types; the client implements it with these method signatures on *Client:
//
//	func (c *Client) ResolveList(ctx context.Context, ref ListRef) (List, error)
//	func (c *Client) AddToList(ctx context.Context, p AddParams, commit CommitFunc) error
//	func (c *Client) RemoveFromList(ctx context.Context, p RemoveParams, commit CommitFunc) error
//	func (c *Client) ListMembers(ctx context.Context, p MembersParams, fn func(ctx context.Context, page []Member) error) error

// ListRef names the static list a sync writes to: by ID, or by name in a
// folder (found, or created there). Exactly one of ID and Name is set.
type ListRef struct {
	// ID is the static list's ID. The list must exist.
	ID int64
	// Name is the static list's exact name.
	Name string
	// Folder is the name of the folder in which a list named by Name is
	// created when it does not exist yet.
	Folder string
}

// List is a resolved static list.
type List struct {
	ID       int64
	Name     string
	FolderID int64
	// Created reports that ResolveList created the list in this call.
	Created bool
}

// Lead is one person to add to a list, or whose fields to update.
type Lead struct {
	// Key is the value of the lookup field (a normalised email by default).
	Key string
	// Values are the lead's field values, one for each of
	// AddParams.FieldNames and in their order (a slice rather than a map
	// per lead: a push holds a chunk of up to a hundred thousand leads).
	Values []string
	// Clears marks a lead whose empty values must clear its fields in
	// Marketo (an update of fields set before). Such a lead with an empty
	// value goes through the REST calls even in a push large enough for a
	// bulk import, whose blank cells leave fields as they are.
	Clears bool
}

// Member is one member of a list as listsync knows it.
type Member struct {
	// Key is the value of the lookup field.
	Key string
	// LeadID is Marketo's lead ID, or 0 when it is not known.
	LeadID int64
}

// Status is what Marketo did with one row.
type Status int

const (
	// NotAttempted means no call carrying the row reached Marketo (the run
	// ended first, for example on a daily quota or a cancelled context).
	NotAttempted Status = iota
	// Confirmed means Marketo confirmed the change: the lead is on the list
	// (add) or off it (remove, including "not in list").
	Confirmed
	// Rejected means Marketo refused the row; Code and Reason say why.
	Rejected
)

// String returns the status's name.
func (s Status) String() string {
	switch s {
	case Confirmed:
		return "confirmed"
	case Rejected:
		return "rejected"
	default:
		return "not_attempted"
	}
}

// Outcome is what Marketo did with one row of an add or a remove.
type Outcome struct {
	// Key is the row's lookup value, as given in the request.
	Key string
	// LeadID is Marketo's lead ID when the call revealed it, else 0.
	LeadID int64
	Status Status
	// Code and Reason carry Marketo's record-level code and message for a
	// rejected row (e.g. "1004", "Lead not found"), or the import failure
	// reason of a bulk import row.
	Code   string
	Reason string
}

// CommitFunc receives the outcomes of each batch as soon as Marketo has
// confirmed it, so that the caller can record them before the next batch is
// sent. An error from it stops the operation and is returned as is.
// Outcomes of rows never sent are not reported through it.
type CommitFunc func(ctx context.Context, outcomes []Outcome) error

// AddParams describes adding leads to a static list (creating or updating
// the leads with their fields on the way).
type AddParams struct {
	ListID int64
	// LookupField is the Marketo field that identifies a lead ("email").
	LookupField string
	// FieldNames names the Marketo lead fields of every lead's Values, in
	// their order; it becomes the header of a bulk import file, after the
	// lookup field. Each name occurs once (without regard to case), and
	// the lookup field is not among them: a lead's Key carries it.
	FieldNames []string
	Leads      []Lead
}

// RemoveParams describes removing members from a static list.
type RemoveParams struct {
	ListID      int64
	LookupField string
	// Members to remove. Those with LeadID 0 are looked up by Key first; a
	// key held by several leads removes all of them.
	Members []Member
}

// MembersParams describes reading a list's members with their lead IDs.
type MembersParams struct {
	ListID      int64
	LookupField string
	// SizeHint is the caller's estimate of the list's size (0 when unknown);
	// it chooses between paging and a bulk extract.
	SizeHint int
}
