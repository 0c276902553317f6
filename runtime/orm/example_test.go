package orm_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
)

// Author and Book are the models of the examples: a book belongs to an
// author, and its tags are stored as JSON.
type Author struct {
	ID    int64  `gorm:"primaryKey"`
	Email string `gorm:"uniqueIndex;size:64"`
	Name  string
	Books []Book
}

// Book belongs to an Author; its Tags use GORM's JSON serializer.
type Book struct {
	ID       int64  `gorm:"primaryKey"`
	ISBN     string `gorm:"uniqueIndex;size:20"`
	Title    string
	Year     int
	Tags     []string `gorm:"serializer:json"`
	AuthorID int64
	Author   *Author
}

// library opens a private in-memory SQLite database with two authors and
// three books.
func library() (*gorm.DB, *orm.Model[Author], *orm.Model[Book]) {
	db, _, err := orm.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&Author{}, &Book{}); err != nil {
		log.Fatal(err)
	}
	authors, err := orm.NewModel[Author](db)
	if err != nil {
		log.Fatal(err)
	}
	books, err := orm.NewModel[Book](db)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := authors.CreateMany(ctx, []Author{
		{Email: "ursula@example.com", Name: "Ursula"},
		{Email: "stanislaw@example.com", Name: "Stanisław"},
	}); err != nil {
		log.Fatal(err)
	}
	if _, err := books.CreateMany(ctx, []Book{
		{ISBN: "978-0441478125", Title: "The Left Hand of Darkness", Year: 1969, Tags: []string{"sf"}, AuthorID: 1},
		{ISBN: "978-0060512750", Title: "The Dispossessed", Year: 1974, Tags: []string{"sf", "utopia"}, AuthorID: 1},
		{ISBN: "978-0156027601", Title: "Solaris", Year: 1961, Tags: []string{"sf"}, AuthorID: 2},
	}); err != nil {
		log.Fatal(err)
	}
	return db, authors, books
}

func ExampleOpen() {
	// "" is a private in-memory SQLite database; "postgres://…" is
	// PostgreSQL and "sqlite:PATH" an SQLite file.
	db, driver, err := orm.Open("")
	if err != nil {
		log.Fatal(err)
	}
	var one int
	db.Raw("SELECT 1").Scan(&one)
	fmt.Println(driver, one)
	// Output: sqlite 1
}

func ExampleNewModel() {
	db, _, err := orm.Open("")
	if err != nil {
		log.Fatal(err)
	}
	authors, err := orm.NewModel[Author](db)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(authors.Table())
	// Output: authors
}

func ExampleModel_FindUnique() {
	_, authors, _ := library()
	ctx := context.Background()
	a, err := authors.FindUnique(ctx, orm.Where{"email": "ursula@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Name)
	// A missing row is nil, not an error.
	missing, err := authors.FindUnique(ctx, orm.Where{"email": "nobody@example.com"})
	fmt.Println(missing, err)
	// The where must name a unique column.
	_, err = authors.FindUnique(ctx, orm.Where{"name": "Ursula"})
	fmt.Println(errors.Is(err, orm.ErrUnsafeWhere))
	// Output:
	// Ursula
	// <nil> <nil>
	// true
}

func ExampleModel_FindUniqueOrThrow() {
	_, _, books := library()
	ctx := context.Background()
	// Only the selected columns are loaded.
	b, err := books.FindUniqueOrThrow(ctx, orm.Where{"isbn": "978-0156027601"}, "title", "year")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%d) %q\n", b.Title, b.Year, b.ISBN)
	_, err = books.FindUniqueOrThrow(ctx, orm.Where{"isbn": "none"})
	fmt.Println(errors.Is(err, orm.ErrNotFound), errors.Is(err, gorm.ErrRecordNotFound))
	// Output:
	// Solaris (1961) ""
	// true true
}

func ExampleModel_FindFirst() {
	_, _, books := library()
	first, err := books.FindFirst(context.Background(), orm.FindManyArgs{
		Where:   orm.Where{"author_id": 1},
		OrderBy: []orm.Order{{Column: "year", Desc: true}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Title)
	// Output: The Dispossessed
}

func ExampleModel_FindMany() {
	_, _, books := library()
	// A book with its author: Include loads the relation.
	list, err := books.FindMany(context.Background(), orm.FindManyArgs{
		Where:   orm.Where{"year": []int{1961, 1969}},
		OrderBy: []orm.Order{{Column: "Year"}},
		Include: []string{"Author"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range list {
		fmt.Printf("%s by %s\n", b.Title, b.Author.Name)
	}
	// Output:
	// Solaris by Stanisław
	// The Left Hand of Darkness by Ursula
}

func ExampleModel_Include() {
	_, authors, _ := library()
	ctx := context.Background()
	// Include returns a model whose every returned row carries the
	// relations; nested paths such as "Books.Author" work too.
	a, err := authors.Include("Books").FindUniqueOrThrow(ctx, orm.Where{"email": "ursula@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Name, len(a.Books))
	// An unknown relation is an error, never ignored.
	_, err = authors.Include("Novels").FindUnique(ctx, orm.Where{"id": 1})
	fmt.Println(errors.Is(err, orm.ErrUnknownRelation))
	// Output:
	// Ursula 2
	// true
}

func ExampleModel_Count() {
	_, _, books := library()
	n, err := books.Count(context.Background(), orm.Where{"author_id": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 2
}

func ExampleModel_Create() {
	_, authors, _ := library()
	a, err := authors.Create(context.Background(), &Author{Email: "octavia@example.com", Name: "Octavia"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.ID, a.Name)
	// Output: 3 Octavia
}

func ExampleModel_CreateMany() {
	_, authors, _ := library()
	n, err := authors.CreateMany(context.Background(), []Author{
		{Email: "iain@example.com", Name: "Iain"},
		{Email: "ted@example.com", Name: "Ted"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 2
}

func ExampleModel_Update() {
	_, _, books := library()
	// Serializer fields take Go values and are stored as GORM stores them.
	b, err := books.Update(context.Background(), orm.Where{"isbn": "978-0156027601"},
		orm.Data{"title": "Solaris (1970 translation)", "tags": []string{"sf", "ocean"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Title, b.Tags)
	// Output: Solaris (1970 translation) [sf ocean]
}

func ExampleModel_UpdateMany() {
	_, _, books := library()
	n, err := books.UpdateMany(context.Background(), orm.Where{"author_id": 1}, orm.Data{"tags": []string{"hainish"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// An empty where would update every row: it is refused.
	_, err = books.UpdateMany(context.Background(), orm.Where{}, orm.Data{"year": 0})
	fmt.Println(errors.Is(err, orm.ErrUnsafeWhere))
	// Output:
	// 2
	// true
}

func ExampleModel_Upsert() {
	_, authors, _ := library()
	ctx := context.Background()
	for _, name := range []string{"Octavia", "Octavia E. Butler"} {
		// Created if missing, else updated.
		a, err := authors.Upsert(ctx, orm.Where{"email": "octavia@example.com"},
			&Author{Email: "octavia@example.com", Name: name}, orm.Data{"name": name})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(a.ID, a.Name)
	}
	// Output:
	// 3 Octavia
	// 3 Octavia E. Butler
}

func ExampleModel_Delete() {
	_, _, books := library()
	b, err := books.Delete(context.Background(), orm.Where{"isbn": "978-0156027601"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted", b.Title)
	// Output: deleted Solaris
}

func ExampleModel_DeleteMany() {
	_, _, books := library()
	n, err := books.DeleteMany(context.Background(), orm.Where{"author_id": 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output: 2
}

func ExampleTransaction() {
	db, authors, books := library()
	ctx := context.Background()
	err := orm.Transaction(ctx, db, func(ctx context.Context) error {
		if _, err := books.DeleteMany(ctx, orm.Where{"author_id": 2}); err != nil {
			return err
		}
		if _, err := authors.Delete(ctx, orm.Where{"id": 2}); err != nil {
			return err
		}
		return errors.New("changed my mind") // rolls both back
	})
	fmt.Println(err)
	n, _ := books.Count(ctx, nil)
	fmt.Println(n, "books")
	// Output:
	// changed my mind
	// 3 books
}

func ExampleAfterCommit() {
	db, authors, _ := library()
	ctx := context.Background()
	err := orm.Transaction(ctx, db, func(ctx context.Context) error {
		if _, err := authors.Update(ctx, orm.Where{"id": 1}, orm.Data{"name": "Ursula K. Le Guin"}); err != nil {
			return err
		}
		// Runs once the transaction has committed; never after a
		// rollback. Cache invalidations go here.
		orm.AfterCommit(ctx, func() { fmt.Println("committed: invalidate author 1") })
		fmt.Println("still in the transaction")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Outside a transaction, fn runs at once.
	orm.AfterCommit(ctx, func() { fmt.Println("no transaction: at once") })
	// Output:
	// still in the transaction
	// committed: invalidate author 1
	// no transaction: at once
}

func ExampleDB() {
	db, _, books := library()
	ctx := context.Background()
	err := orm.Transaction(ctx, db, func(ctx context.Context) error {
		// Plain GORM on the transaction's handle commits or rolls back
		// with it.
		tx := orm.DB(ctx, db)
		if err := tx.Model(&Book{}).Where("year < ?", 1970).Update("year", gorm.Expr("year + 100")).Error; err != nil {
			return err
		}
		// Its context carries the transaction: code handed only the
		// *gorm.DB (a GORM hook, a cached repository) sees it.
		_, inTx := runtime.TxFromContext(tx.Statement.Context)
		fmt.Println("in transaction:", inTx)
		return errors.New("roll back")
	})
	fmt.Println(err)
	n, _ := books.Count(ctx, orm.Where{"year": []int{2061, 2069}})
	fmt.Println(n, "books moved to the future")
	// Output:
	// in transaction: true
	// roll back
	// 0 books moved to the future
}
