package marketo_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/listsync/listsync/internal/marketo"
)

func TestResolveListByID(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	folder := b.em.CreateFolder("Audiences")
	id := b.em.CreateStaticList("Trial users", folder)

	l, err := b.c.ResolveList(t.Context(), marketo.ListRef{ID: id})
	require.NoError(t, err)
	require.Equal(t, marketo.List{ID: id, Name: "Trial users", FolderID: folder}, l)

	_, err = b.c.ResolveList(t.Context(), marketo.ListRef{ID: 987654})
	require.ErrorIs(t, err, marketo.ErrListNotFound)
	require.ErrorContains(t, err, "987654")
}

func TestResolveListByName(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	folder := b.em.CreateFolder("Audiences")
	id := b.em.CreateStaticList("Trial users", folder)

	// Found by name.
	l, err := b.c.ResolveList(t.Context(), marketo.ListRef{Name: "Trial users", Folder: "Nowhere"})
	require.NoError(t, err)
	require.Equal(t, id, l.ID)
	require.False(t, l.Created)

	// Created in the folder, then found.
	l, err = b.c.ResolveList(t.Context(), marketo.ListRef{Name: "Paying, EU", Folder: "Audiences"})
	require.NoError(t, err)
	require.True(t, l.Created)
	require.Equal(t, folder, l.FolderID)
	require.Equal(t, "Paying, EU", l.Name)
	again, err := b.c.ResolveList(t.Context(), marketo.ListRef{Name: "Paying, EU", Folder: "Audiences"})
	require.NoError(t, err)
	require.Equal(t, l.ID, again.ID)
	require.False(t, again.Created)

	// Missing folder: a clear error telling the user what to do.
	_, err = b.c.ResolveList(t.Context(), marketo.ListRef{Name: "New list", Folder: "No such folder"})
	require.ErrorIs(t, err, marketo.ErrFolderNotFound)
	require.ErrorContains(t, err, `"No such folder"`)
	require.ErrorContains(t, err, "create it in Marketo")

	// No folder to create it in.
	_, err = b.c.ResolveList(t.Context(), marketo.ListRef{Name: "New list"})
	require.ErrorIs(t, err, marketo.ErrListNotFound)

	// Bad references.
	_, err = b.c.ResolveList(t.Context(), marketo.ListRef{})
	require.ErrorContains(t, err, "neither an id nor a name")
	_, err = b.c.ResolveList(t.Context(), marketo.ListRef{ID: id, Name: "x"})
	require.ErrorContains(t, err, "set one")
}

// TestResolveListFolderChoice: among folders and programs of one name, a
// Folder wins, and the lowest id among those, on every run.
func TestResolveListFolderChoice(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.em.CreateProgram("Audiences")
	first := b.em.CreateFolder("Audiences")
	b.em.CreateFolder("Audiences")
	l, err := b.c.ResolveList(t.Context(), marketo.ListRef{Name: "L", Folder: "Audiences"})
	require.NoError(t, err)
	require.Equal(t, first, l.FolderID)
}

// TestResolveListDuplicateNameRace: another process creates the list between
// the client's lookup and its create; Marketo answers a duplicate-name error
// and the client uses the other process's list.
func TestResolveListDuplicateNameRace(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	folder := b.em.CreateFolder("Audiences")
	var once sync.Once
	var other int64
	b.setBefore(func(r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/rest/asset/v1/staticLists.json") {
			once.Do(func() { other = b.em.CreateStaticList("Raced", folder) })
		}
	})
	l, err := b.c.ResolveList(t.Context(), marketo.ListRef{Name: "Raced", Folder: "Audiences"})
	require.NoError(t, err)
	require.NotZero(t, other)
	require.Equal(t, other, l.ID)
	require.False(t, l.Created)
	st := b.em.Stats()
	require.Equal(t, int64(1), st.Rejected["709"]+st.Rejected["1017"], "the create met a duplicate name")
	n := 0
	for _, sl := range b.em.StaticLists() {
		if sl.Name == "Raced" {
			n++
		}
	}
	require.Equal(t, 1, n)
}

// TestResolveListConcurrent: several syncs resolve one new name at once and
// all end up on the one list.
func TestResolveListConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.em.CreateFolder("Audiences")
	const n = 8
	ids := make([]int64, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := b.c.ResolveList(t.Context(), marketo.ListRef{Name: "Shared", Folder: "Audiences"})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = l.ID, l.Created
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := range n {
		require.Equal(t, ids[0], ids[i])
		if created[i] {
			nCreated++
		}
	}
	require.Equal(t, 1, nCreated)
}
