//! SQL types the pgrx layer needs that pgrx does not map (`regclass` and `name` arguments), and
//! text read as UTF-8 without pgrx's `&str`/`String` conversions, which panic on text that is not
//! valid UTF-8 (possible in a database whose encoding is not UTF8).

use crate::errors::{require, OrRaise, RowsecError};
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::access::{ShareAccess, UnknownAccess};
use rowsec_core::diagnostic::quoted;
use std::ffi::CStr;

/// The bytes of a `text` (or `varchar`) datum.
///
/// # Safety
/// `datum` is a non-null text datum that lives as long as `'a`.
pub unsafe fn text_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        pgrx::varlena::varlena_to_byte_slice(v)
    }
}

/// Text rowsec reads (`what`: "the team of a directory row", "rowsec.share's to_team") as UTF-8.
/// rowsec compares text by its bytes, as PostgreSQL's `=` does; bytes that are not UTF-8 (only
/// possible when the database encoding is not UTF8) raise character_not_in_repertoire rather
/// than being replaced, which could make two different values equal.
pub fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, RowsecError> {
    std::str::from_utf8(bytes).map_err(|_| {
        let encoding = unsafe { CStr::from_ptr(pg_sys::GetDatabaseEncodingName()) }.to_string_lossy().into_owned();
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("rowsec cannot read {what} as UTF-8"),
            format!(
                "The value {} is not UTF-8 (the database encoding is {encoding}); rowsec compares text as UTF-8.",
                quoted(&String::from_utf8_lossy(bytes))
            ),
            "Keep team names, logins and rowsec's text arguments ASCII, or use a database created with ENCODING 'UTF8'.",
        )
    })
}

/// A `text` argument or SPI result, as UTF-8 (see [`utf8`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromDatum for Text {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        let bytes = unsafe { text_bytes(datum) };
        Some(Text(utf8(bytes, "a text value").or_raise().to_owned()))
    }
}

// So that SPI results can be read as `Text` (`row.get::<Text>(n)`), where pgrx's `String` panics.
impl IntoDatum for Text {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.into_datum()
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for Text {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

pgrx::impl_sql_translatable!(Text, "text");

/// A policy function's `access` argument ('read' or 'write'), read from the text's bytes: called
/// once per row, it allocates nothing, and any other value raises invalid_parameter_value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessArg(pub ShareAccess);

impl FromDatum for AccessArg {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        let access = match unsafe { text_bytes(datum) } {
            b"read" => ShareAccess::Read,
            b"write" => ShareAccess::Write,
            other => invalid_access(other),
        };
        Some(AccessArg(access))
    }
}

#[cold]
#[inline(never)]
fn invalid_access(bytes: &[u8]) -> ! {
    RowsecError::invalid_argument(&UnknownAccess(String::from_utf8_lossy(bytes).into_owned())).raise()
}

unsafe impl<'fcx> ArgAbi<'fcx> for AccessArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

pgrx::impl_sql_translatable!(AccessArg, "text");

/// A type as SQL spells it (`bigint`, `timestamp with time zone`).
pub fn type_name(typid: pg_sys::Oid) -> String {
    unsafe {
        let s = pg_sys::format_type_be(typid);
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

/// A NULL where a function takes no NULL (it is STRICT, so PostgreSQL never passes one): raised
/// as null_value_not_allowed rather than a panic.
fn non_null<T>(value: Option<T>, index: usize) -> T {
    require(value, &format!("argument {}", index + 1))
}

/// A `regclass` argument (a relation OID that PostgreSQL resolved from a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegClass(pub pg_sys::Oid);

impl FromDatum for RegClass {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then(|| RegClass(pg_sys::Oid::from(datum.value() as u32)))
    }
}

impl IntoDatum for RegClass {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(pg_sys::Datum::from(self.0.to_u32()))
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::REGCLASSOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for RegClass {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

// Returned as a column of `rowsec.my_shares()`.
unsafe impl BoxRet for RegClass {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(pg_sys::Datum::from(self.0.to_u32())) }
    }
}

pgrx::impl_sql_translatable!(RegClass, "regclass");

/// A `name` argument (a column name in the configuration functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlName(pub String);

impl FromDatum for SqlName {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a `name` datum points at a NUL-terminated NameData.
        let s = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
        Some(SqlName(s.to_string_lossy().into_owned()))
    }
}

impl IntoDatum for SqlName {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // NameData: NAMEDATALEN zero-padded bytes, truncated like PostgreSQL does (at a char boundary).
        let len = pg_sys::NAMEDATALEN as usize;
        let mut end = self.0.len().min(len - 1);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        unsafe {
            let p = pg_sys::palloc0(len).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, end);
            Some(pg_sys::Datum::from(p))
        }
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::NAMEOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for SqlName {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        non_null(unsafe { arg.unbox_arg_using_from_datum() }, index)
    }
}

pgrx::impl_sql_translatable!(SqlName, "name");
