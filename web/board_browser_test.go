package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hero-dev/hero/store"
)

// TestBrowserBoard drives the board in a real Chromium: add a card with
// the form, move it with the Move button (no script needed), drag it to
// another column (board.js), and read its history on the card page.
func TestBrowserBoard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.project("shop", map[string]store.Role{"mia@example.com": store.RoleMember})
	ctx := chromium(t)
	e.idp.as(fakePerson{Email: "mia@example.com", Name: "Mia"})
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	read := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("browser: read page: %v", err)
		}
		return v
	}
	shot := func(name string) {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), buf, 0o644)
		}
	}
	board := e.srv.URL + "/settings/projects/shop/board"
	do("log in", chromedp.Navigate(board), chromedp.WaitVisible(`a.button`), chromedp.Click(`a.button`), chromedp.WaitVisible(`form.add-card`))
	do("add a card",
		chromedp.SendKeys(`form.add-card input[name=title]`, "Ship the new checkout"),
		chromedp.SendKeys(`form.add-card textarea[name=body]`, "Behind the flag first."),
		chromedp.Click(`form.add-card button`),
		chromedp.WaitVisible(`.flash`),
	)
	inTodo := read(chromedp.Text(`section[data-column="to-do"]`))
	id := read(chromedp.Evaluate[string](`document.querySelector('section[data-column="to-do"] li.kcard').id`))
	shot("board-1-added")

	do("move it with the button",
		chromedp.SetValue(`#`+id+` select[name=column]`, "review"),
		chromedp.Click(`#`+id+` form.move button`),
		chromedp.WaitVisible(`section[data-column="review"] #`+id),
	)
	// HTML5 drag and drop, as the browser dispatches it.
	do("drag it to In progress", chromedp.Evaluate[chromedp.Void](`(() => {
		const li = document.getElementById("`+id+`");
		const col = document.querySelector('section[data-column="in-progress"]');
		const dt = new DataTransfer();
		li.dispatchEvent(new DragEvent("dragstart", {dataTransfer: dt, bubbles: true}));
		col.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
		col.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`), chromedp.WaitVisible(`section[data-column="in-progress"] #`+id))
	shot("board-2-dragged")

	do("open the card", chromedp.Click(`#`+id+` a.ktitle`), chromedp.WaitVisible(`ol.history`))
	history := read(chromedp.Text(`ol.history`))
	column := read(chromedp.Text(`dd.kcolumn`))
	shot("board-3-card")

	if !strings.Contains(inTodo, "Ship the new checkout") {
		t.Errorf("To do shows %q", inTodo)
	}
	if column != "In progress" {
		t.Errorf("card page says column %q", column)
	}
	for _, want := range []string{"mia@example.com created it in To do (web)", "moved it from To do to Review (web)", "moved it from Review to In progress (web)"} {
		if !strings.Contains(history, want) {
			t.Errorf("history lacks %q: %s", want, history)
		}
	}
}
